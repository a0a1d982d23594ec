"""Spatial building blocks shared by the apps: geometry validation, spatial queries, tiles."""
