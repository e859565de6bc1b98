"""A notification: one message for one milestone, to its recipients, sent once.

Statuses: ``awaiting_contact`` (the student's address or name is not known yet)
→ ``pending`` → ``sending`` (claimed by a delivery worker under a lease) →
``sent``; or back to ``pending`` after a failed attempt, ``failed`` after the
last one (staff may resend it, which makes it ``pending`` again).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from notifier.domain.templates import Rendered

STATUSES = ("awaiting_contact", "pending", "sending", "sent", "failed")
RESENDABLE = frozenset({"failed"})
_REMINDERS = uuid.UUID("6f1d2c0e-8a57-4f37-9a0e-3c1b5d7e9f21")


def dedupe_key(cause_event_id: uuid.UUID, template: str) -> str:
    """At most one notification per (cause event, template); its recipients go in one message."""
    return f"{cause_event_id}:{template}"


def reminder_cause(student_no: str, on: str) -> uuid.UUID:
    """A stable id standing for 'the reminder of ``student_no`` on day ``on``'."""
    return uuid.uuid5(_REMINDERS, f"{student_no}:{on}")


def new_notification(
    *,
    template: str,
    student_no: str,
    cause_event_id: uuid.UUID,
    facts: dict[str, Any],
    given_addresses: dict[str, str | None],
    at: datetime,
) -> dict[str, Any]:
    """A notification waiting for its student's contact; :func:`rendered` makes it sendable."""
    return {
        "_id": str(uuid.uuid4()),
        "dedupe_key": dedupe_key(cause_event_id, template),
        "template": template,
        "student_no": student_no,
        "cause_event_id": str(cause_event_id),
        "status": "awaiting_contact",
        "facts": facts,
        "given_addresses": given_addresses,
        "recipients": [],
        "attempts": 0,
        "created_at": at,
        "read": False,
        "log": [{"at": at, "event": "queued"}],
    }


def rendered(
    doc: dict[str, Any], message: Rendered, recipients: list[str], at: datetime
) -> dict[str, Any]:
    """The fields that make a notification sendable. The facts are dropped: the
    rendered message is all that is kept."""
    if not recipients:
        raise ValueError("a notification needs at least one recipient")
    return {
        "status": "pending",
        "recipients": recipients,
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "next_attempt_at": at,
        "rendered_at": at,
    }


def retry_delay(attempts: int, cap_seconds: float) -> timedelta:
    """Exponential back-off after ``attempts`` failures: 2 s, 4 s, 8 s ... up to the cap."""
    return timedelta(seconds=min(2.0**attempts, cap_seconds))
