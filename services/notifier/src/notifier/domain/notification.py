"""A notification: one message for one milestone, to its recipients, sent once."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from notifier.domain.templates import render


def dedupe_key(cause_event_id: uuid.UUID, template: str, recipients: list[str]) -> str:
    """At most one notification per (cause event, template, recipients)."""
    return f"{cause_event_id}:{template}:{','.join(sorted(r.lower() for r in recipients))}"


def new_notification(
    *,
    template: str,
    student_no: str,
    recipients: list[str],
    cause_event_id: uuid.UUID,
    context: dict[str, Any],
    at: datetime,
) -> dict[str, Any]:
    rendered = render(template, context)
    return {
        "_id": str(uuid.uuid4()),
        "dedupe_key": dedupe_key(cause_event_id, template, recipients),
        "template": template,
        "student_no": student_no,
        "recipients": recipients,
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "cause_event_id": str(cause_event_id),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": at,
        "created_at": at,
        "read": False,
    }


def retry_delay(attempts: int, cap_seconds: float) -> timedelta:
    """Exponential back-off after ``attempts`` failures: 2 s, 4 s, 8 s ... up to the cap."""
    return timedelta(seconds=min(2.0**attempts, cap_seconds))
