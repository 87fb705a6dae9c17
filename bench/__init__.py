"""Benchmark harness: `make bench SCENARIO=...` merges results into bench/results.json."""
