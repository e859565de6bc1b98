"""Registration's rules: the registration record and its status. No I/O here."""
