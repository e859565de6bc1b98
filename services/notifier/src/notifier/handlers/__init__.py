"""Notifier's use cases: one per consumed event, plus delivery."""
