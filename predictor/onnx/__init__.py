"""toolcast.predictor.onnx."""
