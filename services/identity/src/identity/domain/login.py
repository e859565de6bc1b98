"""Logging in: matching a JUPAS entrant's particulars, lockout, and masking for the audit.

Every failure is the same "access denied" to the caller; the reason is kept for
the audit trail only.
"""

from __future__ import annotations

import hmac
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

DOB_FORMAT = re.compile(r"^\s*(\d{2})/(\d{2})/(\d{4})\s*$")


class DenyReason(StrEnum):
    BAD_FORMAT = "bad_format"
    UNKNOWN_ACCOUNT = "unknown_account"
    WRONG_CREDENTIALS = "wrong_credentials"
    LOCKED = "locked"
    NOT_ACTIVATED = "not_activated"
    TOTP_MISSING = "totp_missing"
    TOTP_WRONG = "totp_wrong"
    DISABLED = "disabled"


def normalise_name(name: str) -> str:
    """Case- and whitespace-insensitive form of a name ("  siu  MING" == "Siu Ming")."""
    text = unicodedata.normalize("NFKC", name).casefold()
    return "".join(text.split())


def parse_login_dob(text: str) -> date | None:
    """A date of birth as the login form takes it: DD/MM/YYYY only; anything else is None."""
    match = DOB_FORMAT.match(text)
    if match is None:
        return None
    day, month, year = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def jupas_particulars_match(
    *,
    surname: str,
    given_names: str,
    date_of_birth: date,
    last_name: str,
    first_name: str,
    dob: date | None,
) -> bool:
    """Every field is compared (no early exit), so a mismatch anywhere costs the same."""
    results = [
        _same(normalise_name(surname), normalise_name(last_name)),
        _same(normalise_name(given_names), normalise_name(first_name)),
        dob is not None and _same(date_of_birth.isoformat(), dob.isoformat()),
    ]
    return all(results)


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lock_for: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class LockoutState:
    failures: list[datetime] = field(default_factory=list)
    locked_until: datetime | None = None

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


def after_failure(state: LockoutState, now: datetime, policy: LockoutPolicy) -> LockoutState:
    """Count a failure; the ``max_failures``-th within ``window`` locks the account."""
    recent = [t for t in state.failures if now - t < policy.window] + [now]
    if state.is_locked(now):
        return LockoutState(recent[-policy.max_failures :], state.locked_until)
    if len(recent) >= policy.max_failures:
        return LockoutState([], now + policy.lock_for)
    return LockoutState(recent, None)


def mask_identifier(value: str) -> str:
    """What the audit keeps of a submitted identifier: enough to correlate, not to reuse."""
    text = value.strip()
    if "@" in text:
        local, _, domain = text.partition("@")
        return f"{local[:1]}***@{domain[:60]}"
    if len(text) <= 4:
        return "*" * len(text)
    return "*" * (min(len(text), 12) - 3) + text[-3:]
