"""Benchmarks (`make bench`): medians and p95 next to a baseline measured in the same run."""
