"""muninmail's benchmarks: `python -m bench.run` (bench/README.md)."""
