"""Card's HTTP API."""
