"""Shared plumbing: event catalogue, outbox, idempotent consumers, settings, logging, health."""
