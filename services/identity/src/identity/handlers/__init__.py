"""Identity's use cases: one per command, one per consumed event."""
