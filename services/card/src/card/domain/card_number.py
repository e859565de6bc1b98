"""Card numbers: ``<intake year><serial, at least 5 digits><check digit>``.

The check digit is Damm's (a totally anti-symmetric quasigroup of order 10):
digits only, and unlike Luhn or ISO/IEC 7064 MOD 11,10 it catches every
single-digit error and every swap of two adjacent digits, which is what a card
office clerk typing a number from a card gets wrong.

Example: intake 2026, serial 17 -> payload ``202600017`` -> ``2026000177``.
"""

from __future__ import annotations

import re

SERIAL_WIDTH = 5
_NUMBER = re.compile(r"^[0-9]{8,16}$")

# Damm's operation table (H. M. Damm, 2004).
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def check_digit(payload: str) -> str:
    """The Damm check digit of a string of digits."""
    if not payload.isdigit() or not payload.isascii():
        raise ValueError(f"a card number payload is digits only, got {payload!r}")
    interim = 0
    for char in payload:
        interim = _DAMM[interim][int(char)]
    return str(interim)


def card_number(intake_year: int, serial: int) -> str:
    """The card number of the ``serial``-th card (from 1) of an intake."""
    if not 1000 <= intake_year <= 9999:
        raise ValueError(f"intake year must have four digits, got {intake_year}")
    if serial < 1:
        raise ValueError(f"serial numbers start at 1, got {serial}")
    payload = f"{intake_year}{serial:0{SERIAL_WIDTH}d}"
    if len(payload) + 1 > 16:
        raise ValueError(f"serial {serial} does not fit in a card number")
    return payload + check_digit(payload)


def is_valid_card_number(value: str) -> bool:
    """True if ``value`` has the card number's shape and its check digit matches."""
    if not _NUMBER.match(value):
        return False
    return check_digit(value[:-1]) == value[-1]
