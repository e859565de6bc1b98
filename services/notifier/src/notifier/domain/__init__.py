"""Notifier's rules: which milestone gets which message, rendered how. No I/O here."""
