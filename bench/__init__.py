"""Benchmarks of flask-hyper against the raw clients and FastStream (``make bench``).

Benchmarks are not tests: nothing here asserts a timing. ``python -m bench``
starts one local Kafka broker, runs every section against it, and writes
BENCHMARKS.md with the medians and ratios of the run.
"""
