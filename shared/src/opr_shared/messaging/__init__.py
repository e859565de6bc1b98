"""Consuming events: idempotent consumer, dead letters."""
