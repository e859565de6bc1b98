"""Short-lived links for staff to open a stored file without sending their token
(a browser tab or an ``<img>``). Only the token's SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

Target = Literal["document", "photo"]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_content_link(
    db: Any, links: str, *, target: Target, item_id: str, staff_id: str, ttl: timedelta
) -> tuple[str, datetime]:
    """Issue a link token for one file.

    Idempotency key: none (each call is a new token). Side effects: a
    ``content_links`` row (who asked, for which file, until when), removed by TTL
    after it expires; it doubles as the record of staff opening files.
    """
    token = secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + ttl
    await db[links].insert_one(
        {
            "_id": _digest(token),
            "target": target,
            "item_id": item_id,
            "staff_id": staff_id,
            "created_at": datetime.now(UTC),
            "expires_at": expires_at,
        }
    )
    return token, expires_at


async def link_allows(db: Any, links: str, *, token: str, target: Target, item_id: str) -> bool:
    """Whether ``token`` opens this file now (the TTL monitor is lazy: expiry is checked)."""
    row = await db[links].find_one({"_id": _digest(token)})
    if row is None or row["target"] != target or row["item_id"] != item_id:
        return False
    expires_at: datetime = row["expires_at"]
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    return expires_at > datetime.now(UTC)
