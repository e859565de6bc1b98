"""Identity's rules: the admitted-student roster and invitations. No I/O here."""
