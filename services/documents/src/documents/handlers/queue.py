"""What staff see: the review queues, oldest first, with each item's age."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from opr_shared.store.mongo import Document

from documents.domain.review import queue_age
from documents.store import DOCUMENTS, PHOTOS

Kind = Literal["document", "photo"]

_COLLECTION = {"document": (DOCUMENTS, "uploaded_at"), "photo": (PHOTOS, "submitted_at")}


async def list_queue(
    db: Any, *, kind: Kind, status: str, limit: int, now: datetime | None = None
) -> list[Document]:
    """Rows of one kind in one state, oldest first, each with ``age`` (hours,
    working days, overdue beyond five working days). Reads only."""
    collection, submitted = _COLLECTION[kind]
    now = now or datetime.now(UTC)
    cursor = db[collection].find({"status": status}).sort(submitted, 1).limit(limit)
    items: list[Document] = []
    async for row in cursor:
        age = queue_age(row[submitted], now)
        row["age"] = {
            "hours": age.hours,
            "working_days": age.working_days,
            "overdue": age.overdue,
        }
        items.append(row)
    return items
