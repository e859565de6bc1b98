"""Staff view of the delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from opr_shared.runtime import db_of
from pydantic import BaseModel

from notifier.store import NOTIFICATIONS

router = APIRouter(tags=["notifications"])


class NotificationOut(BaseModel):
    id: str
    student_no: str
    template: str
    subject: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None = None
    last_error: str | None = None


@router.get("/notifications", response_model=list[NotificationOut])
async def list_notifications(
    db: Annotated[Any, Depends(db_of)],
    status: Annotated[Literal["pending", "sending", "sent", "failed"] | None, Query()] = None,
    student_no: Annotated[str | None, Query(pattern=r"^\d{8}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[NotificationOut]:
    selector: dict[str, Any] = {}
    if status:
        selector["status"] = status
    if student_no:
        selector["student_no"] = student_no
    docs = await db[NOTIFICATIONS].find(selector).sort("created_at", -1).limit(limit).to_list()
    return [
        NotificationOut(
            id=d["_id"],
            student_no=d["student_no"],
            template=d["template"],
            subject=d["subject"],
            status=d["status"],
            attempts=d["attempts"],
            created_at=d["created_at"],
            sent_at=d.get("sent_at"),
            last_error=d.get("last_error"),
        )
        for d in docs
    ]
