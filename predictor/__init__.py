"""toolcast.predictor."""
