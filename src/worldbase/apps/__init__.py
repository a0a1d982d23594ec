"""Seed apps, one package each; apps never import each other."""
