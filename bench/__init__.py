"""haltgate benchmarks: ``python bench/run.py [--smoke] [--json out.json]``."""
