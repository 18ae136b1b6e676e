"""toolcast.predictor.session."""
