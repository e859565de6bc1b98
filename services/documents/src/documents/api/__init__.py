"""The documents HTTP API."""
