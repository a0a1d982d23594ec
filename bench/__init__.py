"""Benchmarks: each starts Worldbase and an anchor side by side and prints ratios (ours/anchor)."""
