"""toolcast.training."""
