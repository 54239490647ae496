"""Benchmarks: `./dev bench [scenario] [options]`; figures print as a table and save under bench/results/."""
