"""toolcast.runtime."""
