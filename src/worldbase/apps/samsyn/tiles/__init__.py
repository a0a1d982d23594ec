"""samsyn: tiles."""
