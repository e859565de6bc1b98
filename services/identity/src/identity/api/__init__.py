"""Identity's HTTP API (thin: parse, call a handler, shape the answer)."""
