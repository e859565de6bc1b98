"""What staff see: the review queues, oldest first, with each item's age."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from opr_shared.store.mongo import Document

from documents.domain.calendar import holidays_between
from documents.domain.review import HONG_KONG, queue_age
from documents.store import DOCUMENTS, PHOTOS, WITHOUT_CARD_IMAGE

Kind = Literal["document", "photo"]

_COLLECTION = {"document": (DOCUMENTS, "uploaded_at"), "photo": (PHOTOS, "submitted_at")}


async def list_queue(
    db: Any,
    *,
    kind: Kind,
    status: str,
    limit: int,
    student_no: str | None = None,
    doc_type: str | None = None,
    now: datetime | None = None,
) -> list[Document]:
    """Rows of one kind in one state (optionally one student's, or one document
    type), oldest first, each with ``age`` (hours, working days, overdue beyond
    five working days; Hong Kong's general holidays are no working days). Reads
    only."""
    collection, submitted = _COLLECTION[kind]
    now = now or datetime.now(UTC)
    selector: dict[str, Any] = {"status": status}
    if student_no is not None:
        selector["student_no"] = student_no
    if doc_type is not None and kind == "document":
        selector["doc_type"] = doc_type
    cursor = db[collection].find(selector, WITHOUT_CARD_IMAGE).sort(submitted, 1).limit(limit)
    today = now.astimezone(HONG_KONG).date()
    # Last year's and this year's: an item waiting longer is overdue either way.
    closed = holidays_between(today.replace(year=today.year - 1, month=1, day=1), today)
    items: list[Document] = []
    async for row in cursor:
        age = queue_age(row[submitted], now, closed)
        row["age"] = {
            "hours": age.hours,
            "working_days": age.working_days,
            "overdue": age.overdue,
        }
        items.append(row)
    return items
