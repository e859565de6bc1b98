"""Persistence: MongoDB unit of work and outbox, object store."""
