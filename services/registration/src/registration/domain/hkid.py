"""Hong Kong Identity Card numbers: format and check digit."""

from __future__ import annotations

import re

_SHAPE = re.compile(r"^([A-Z]{1,2})([0-9]{6})\(?([0-9A])\)?$")


class InvalidHkid(ValueError):
    """Not an HKID number: wrong shape or wrong check digit."""


def check_digit(prefix: str, digits: str) -> str:
    """The check digit of ``prefix`` (one or two letters) and six ``digits``.

    Weights 9..2 over eight positions; a one-letter prefix is padded with a space
    (value 36), letters count A=10 .. Z=35; the digit is 11 - (sum mod 11), with
    10 written as A and 11 as 0.
    """
    padded = prefix.rjust(2)
    values = [36 if c == " " else ord(c) - ord("A") + 10 for c in padded]
    values += [int(d) for d in digits]
    total = sum(v * w for v, w in zip(values, range(9, 1, -1), strict=True))
    remainder = (11 - total % 11) % 11
    return "A" if remainder == 10 else str(remainder)


def normalise_hkid(raw: str) -> str:
    """``raw`` as ``A123456(3)``; accepts lower case, spaces and a missing bracket.

    Raises :class:`InvalidHkid` with the reason when it is not a valid number.
    """
    compact = re.sub(r"\s+", "", raw).upper()
    match = _SHAPE.match(compact)
    if match is None:
        raise InvalidHkid(
            "an HKID number is one or two letters, six digits and a check digit, e.g. A123456(3)"
        )
    prefix, digits, given = match.groups()
    if check_digit(prefix, digits) != given:
        raise InvalidHkid("the check digit of this HKID number is wrong: please check the number")
    return f"{prefix}{digits}({given})"
