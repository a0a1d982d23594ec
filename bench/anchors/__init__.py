"""Anchor servers the benchmarks compare against (run side by side on this machine)."""
