"""Documents' rules: what may be uploaded, content checks, verification. No I/O here."""
