"""toolcast.predictor.features."""
