"""toolcast command line."""
