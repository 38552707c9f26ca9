"""packets layer."""
