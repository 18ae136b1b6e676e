"""toolcast.predictor.torch."""
