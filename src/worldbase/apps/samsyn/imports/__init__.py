"""samsyn: imports."""
