"""toolcast.serving."""
