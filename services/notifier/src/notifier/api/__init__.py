"""Notifier's HTTP API."""
