"""Signing keys: which one signs, and which are still published for verification."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class KeyRecord:
    kid: str
    created_at: datetime
    retired_at: datetime | None
    public_jwk: dict[str, Any]


def signing_key(keys: list[KeyRecord]) -> KeyRecord | None:
    """The newest key not retired (two replicas starting at once may both create one)."""
    live = [k for k in keys if k.retired_at is None]
    return max(live, key=lambda k: k.created_at) if live else None


def published_keys(
    keys: list[KeyRecord], now: datetime, token_lifetime: timedelta
) -> list[KeyRecord]:
    """Every key a token that has not expired yet may be signed with.

    A retired key stays published for one token lifetime (plus a minute of clock
    leeway) after its retirement, so tokens it signed keep working until they expire.
    """
    grace = token_lifetime + timedelta(minutes=1)
    return [k for k in keys if k.retired_at is None or now < k.retired_at + grace]
