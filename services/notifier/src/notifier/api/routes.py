"""The delivery log and resends (staff), template previews (staff), the student's inbox."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from opr_shared.auth import Principal, Role, current_student, require_roles
from opr_shared.runtime import db_of
from opr_shared.store.mongo import update_by_id
from pydantic import BaseModel, Field

from notifier.domain.notification import RESENDABLE, STATUSES
from notifier.domain.samples import sample_context
from notifier.domain.templates import SUBJECTS, TEMPLATES, render
from notifier.store import NOTIFICATIONS

log = logging.getLogger(__name__)
router = APIRouter()

Staff = Annotated[
    Principal, Depends(require_roles(Role.REGISTRY_OFFICER, Role.CARD_OFFICE, Role.ADMIN))
]
Registry = Annotated[Principal, Depends(require_roles(Role.REGISTRY_OFFICER, Role.ADMIN))]
Student = Annotated[Principal, Depends(current_student)]
Db = Annotated[Any, Depends(db_of)]
NotificationId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")]


class LogEntry(BaseModel):
    at: datetime
    event: str = Field(description="queued, contact_known, attempt_failed, sent, resend...")
    error: str | None = None
    note: str | None = None


class NotificationOut(BaseModel):
    id: str
    student_no: str
    template: str
    subject: str | None = Field(description="Absent while waiting for the student's contact.")
    status: Literal["awaiting_contact", "pending", "sending", "sent", "failed"]
    recipient_count: int
    attempts: int
    created_at: datetime
    sent_at: datetime | None = None
    confirmed: bool | None = Field(
        default=None, description="False if the server's answer was never recorded (see docs)."
    )
    last_error: str | None = None


class NotificationDetail(NotificationOut):
    log: list[LogEntry]


def _out(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": d["_id"],
        "student_no": d["student_no"],
        "template": d["template"],
        "subject": d.get("subject"),
        "status": d["status"],
        "recipient_count": len(d.get("recipients") or []),
        "attempts": d["attempts"],
        "created_at": d["created_at"],
        "sent_at": d.get("sent_at"),
        "confirmed": d.get("confirmed"),
        "last_error": d.get("last_error"),
    }


# --- staff: the delivery log ----------------------------------------------------


@router.get("/notifications", response_model=list[NotificationOut], tags=["delivery log"])
async def list_notifications(
    _: Staff,
    db: Db,
    status: Annotated[Literal[STATUSES] | None, Query()] = None,  # type: ignore[valid-type]
    student_no: Annotated[str | None, Query(pattern=r"^\d{8,10}$")] = None,
    confirmed: Annotated[
        bool | None,
        Query(description="false: sent, but the mail server's answer was never recorded."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[NotificationOut]:
    """The delivery log, newest first. What staff may resend: ``status=failed``, and
    ``status=sent&confirmed=false`` (the process stopped between the point of no
    return and the server's answer: maybe delivered, maybe not)."""
    selector: dict[str, Any] = {}
    if status:
        selector["status"] = status
    if confirmed is not None:
        selector["confirmed"] = confirmed
    if student_no:
        selector["student_no"] = student_no
    docs = await db[NOTIFICATIONS].find(selector).sort("created_at", -1).limit(limit).to_list()
    return [NotificationOut(**_out(d)) for d in docs]


@router.get(
    "/notifications/{notification_id}", response_model=NotificationDetail, tags=["delivery log"]
)
async def get_notification(_: Staff, db: Db, notification_id: NotificationId) -> NotificationDetail:
    """One notification with its delivery log (attempts, errors, resends)."""
    doc = await db[NOTIFICATIONS].find_one({"_id": notification_id})
    if doc is None:
        raise HTTPException(404, "no such notification")
    return NotificationDetail(**_out(doc), log=[LogEntry(**e) for e in doc.get("log", [])])


@router.post(
    "/notifications/{notification_id}/resend",
    response_model=NotificationOut,
    status_code=202,
    tags=["delivery log"],
)
async def resend_notification(
    staff: Registry, db: Db, notification_id: NotificationId
) -> NotificationOut:
    """Queue a failed notification for delivery again (same message, same Message-ID).

    A ``failed`` notification, or one marked sent without the mail server's answer
    on record (``confirmed: false``), can be resent; one that was sent and
    confirmed, or is still being delivered, answers 409.
    """
    now = datetime.now(UTC)
    existing = await db[NOTIFICATIONS].find_one(
        {"_id": notification_id}, {"status": 1, "confirmed": 1}
    )
    if existing is None:
        raise HTTPException(404, "no such notification")
    status, confirmed = existing["status"], existing.get("confirmed")
    # Sent without the server's answer on record (see the delivery worker) counts too.
    if status not in RESENDABLE and not (status == "sent" and confirmed is False):
        raise HTTPException(
            409,
            f"only a failed or unconfirmed notification can be resent; this one is {status}",
        )
    # Updated only if nobody changed it since it was read (by _id: see update_by_id).
    doc = await update_by_id(
        db[NOTIFICATIONS],
        notification_id,
        {
            "$set": {"status": "pending", "attempts": 0, "next_attempt_at": now},
            "$unset": {"failed_at": "", "confirmed": "", "sent_at": ""},
            "$push": {"log": {"at": now, "event": "resend", "note": f"by {staff.subject}"}},
        },
        where={"status": status, "confirmed": confirmed},
    )
    if doc is None:
        raise HTTPException(409, "the notification changed meanwhile; look at it again")
    log.info("notification queued again by staff", extra={"notification_id": notification_id})
    return NotificationOut(**_out(doc))


# --- staff: templates -----------------------------------------------------------


class TemplateOut(BaseModel):
    name: str
    subject: str


class PreviewOut(TemplateOut):
    text: str
    html: str
    sample: dict[str, Any]


@router.get("/templates", response_model=list[TemplateOut], tags=["templates"])
async def list_templates(_: Staff) -> list[TemplateOut]:
    return [TemplateOut(name=n, subject=SUBJECTS[n]) for n in TEMPLATES]


@router.get("/templates/{name}/preview", response_model=PreviewOut, tags=["templates"])
async def preview_template(
    _: Staff,
    name: str,
    format: Annotated[Literal["json", "html", "text"], Query()] = "json",
) -> Any:
    """The template rendered with sample data, both languages; ``format=html`` or
    ``text`` answer the body alone (to open in a browser)."""
    if name not in SUBJECTS:
        raise HTTPException(404, f"no template {name!r}; known: {', '.join(TEMPLATES)}")
    sample = sample_context(name)
    rendered = render(name, sample)
    if format == "html":
        return HTMLResponse(rendered.html)
    if format == "text":
        return PlainTextResponse(rendered.text)
    return PreviewOut(
        name=name, subject=rendered.subject, text=rendered.text, html=rendered.html, sample=sample
    )


# --- students: the inbox --------------------------------------------------------


class InboxItem(BaseModel):
    id: str
    template: str
    subject: str
    created_at: datetime
    read: bool
    emailed: bool = Field(description="True once the e-mail was handed to the mail server.")


class InboxMessage(InboxItem):
    text: str
    html: str


def _inbox(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": d["_id"],
        "template": d["template"],
        "subject": d["subject"],
        "created_at": d["created_at"],
        "read": bool(d.get("read")),
        "emailed": d["status"] == "sent",
    }


def _mine(student: Principal, notification_id: str | None = None) -> dict[str, Any]:
    # Parked notifications have no message yet: the inbox shows rendered ones only.
    # ``_id`` first when given: the database plans on the first clause an index serves.
    selector: dict[str, Any] = {} if notification_id is None else {"_id": notification_id}
    selector["student_no"] = student.student_no
    selector["status"] = {"$ne": "awaiting_contact"}
    return selector


@router.get("/me/notifications", response_model=list[InboxItem], tags=["inbox"])
async def my_notifications(
    student: Student,
    db: Db,
    unread: Annotated[bool | None, Query(description="Only unread (true) or read (false).")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> list[InboxItem]:
    """Every message sent to the signed-in student, newest first, with read/unread."""
    selector = _mine(student)
    if unread is not None:
        selector["read"] = not unread
    docs = await db[NOTIFICATIONS].find(selector).sort("created_at", -1).limit(limit).to_list()
    return [InboxItem(**_inbox(d)) for d in docs]


@router.get("/me/notifications/{notification_id}", response_model=InboxMessage, tags=["inbox"])
async def my_notification(
    student: Student, db: Db, notification_id: NotificationId
) -> InboxMessage:
    """One message of the student's inbox, with both bodies."""
    doc = await db[NOTIFICATIONS].find_one(_mine(student, notification_id))
    if doc is None:
        raise HTTPException(404, "no such message in your inbox")
    return InboxMessage(**_inbox(doc), text=doc["text"], html=doc["html"])


@router.post("/me/notifications/{notification_id}/read", response_model=InboxItem, tags=["inbox"])
async def mark_read(
    student: Student,
    db: Db,
    notification_id: NotificationId,
    read: Annotated[bool, Query(description="false marks it unread again")] = True,
) -> InboxItem:
    """Mark one message read (or unread again with ``read=false``)."""
    doc = await update_by_id(
        db[NOTIFICATIONS],
        notification_id,
        {"$set": {"read": read, "read_at": datetime.now(UTC) if read else None}},
        where=_mine(student),
    )
    if doc is None:
        raise HTTPException(404, "no such message in your inbox")
    return InboxItem(**_inbox(doc))


__all__ = ["Response", "router"]
