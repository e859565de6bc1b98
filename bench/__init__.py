"""Load benchmark: a whole intake registering at once against the embedded stack.

``python -m bench --n 500`` (or ``make bench N=500``) starts a private stack, drives
the cohort through the public API, measures the raw ceiling of the same Kafka,
MongoDB and S3 servers and writes ``bench/results/latest.{json,md,png}``.
"""
