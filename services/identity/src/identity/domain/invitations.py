"""Activation tokens: random, single use, expiring, stored only as a hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewInvitation:
    token: str
    token_hash: str
    expires_at: datetime
    invitation_no: int


def new_invitation(previous_no: int, now: datetime, ttl: timedelta) -> NewInvitation:
    """A fresh token; issuing one replaces (invalidates) any earlier one."""
    token = secrets.token_urlsafe(32)
    return NewInvitation(token, hash_token(token), now + ttl, previous_no + 1)


def activation_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/activate?token={token}"
