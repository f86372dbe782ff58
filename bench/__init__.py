"""Benchmarks of preview-worker against its baselines, measured in the same run (``python -m bench``).

Benchmarks are not tests: they print figures and ratios, and CI does not time
them. See BENCHMARKS.md for how to run them and the latest figures.
"""
