"""Card's rules: eligibility, card numbers, collection. No I/O here."""
