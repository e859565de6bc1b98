"""Identity's rules: roster, invitations, passwords, logins and lockout, activation,
signing keys and staff TOTP. No I/O here."""
