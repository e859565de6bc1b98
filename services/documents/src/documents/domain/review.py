"""Reviewing uploads: the states of a document or photo, what may be verified,
and how long an item has waited (in working days)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum

from opr_shared.events.catalogue import DocumentType

HONG_KONG = timezone(timedelta(hours=8), "HKT")  # no daylight saving time
REVIEW_WORKING_DAYS = 5


class ReviewStatus(StrEnum):
    """The state of one uploaded version.

    ``pending`` → ``verified``/``approved`` or ``rejected`` by staff;
    ``pending`` → ``superseded`` when the student uploads a newer version.
    Only the latest pending version is reviewed.
    """

    PENDING = "pending"
    VERIFIED = "verified"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


class ReviewRefused(Exception):
    """A review that the rules do not allow; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# Documents that can establish local status (residence in Hong Kong).
LOCAL_STATUS_DOCUMENTS = frozenset(
    {
        DocumentType.HK_PERMANENT_ID_CARD,
        DocumentType.HK_ID_CARD,
        DocumentType.PASSPORT,
        DocumentType.DOCUMENT_OF_IDENTITY,
        DocumentType.EXIT_ENTRY_PERMIT,
        DocumentType.DEPENDANT_VISA,
    }
)
# Documents that always carry an expiry date: the officer must record it.
EXPIRING_DOCUMENTS = frozenset(
    {
        DocumentType.PASSPORT,
        DocumentType.DOCUMENT_OF_IDENTITY,
        DocumentType.EXIT_ENTRY_PERMIT,
        DocumentType.STUDENT_VISA,
        DocumentType.DEPENDANT_VISA,
    }
)


def local_status_cutoff(intake_year: int) -> date:
    """An identity document expiring on or before this date cannot establish local status."""
    return date(intake_year, 9, 1)


def ensure_reviewable(status: str, *, what: str) -> None:
    """Only a pending version is reviewed; anything else is a conflict."""
    if status == ReviewStatus.PENDING:
        return
    if status == ReviewStatus.SUPERSEDED:
        raise ReviewRefused(409, f"A newer version of this {what} was uploaded: review that one.")
    raise ReviewRefused(409, f"This {what} was already reviewed ({status}).")


def check_verification(doc_type: DocumentType, expiry_date: date | None, intake_year: int) -> None:
    """Raise :class:`ReviewRefused` when this document may not be verified."""
    if expiry_date is None:
        if doc_type in EXPIRING_DOCUMENTS:
            raise ReviewRefused(422, "Record the document's expiry date to verify it.")
        return
    cutoff = local_status_cutoff(intake_year)
    if doc_type in LOCAL_STATUS_DOCUMENTS and expiry_date <= cutoff:
        raise ReviewRefused(
            422,
            f"The document expires on {expiry_date.isoformat()}, on or before "
            f"{cutoff.isoformat()}: it cannot establish local status. Reject it and ask "
            "for a renewed document.",
        )


def working_days_between(start: date, end: date, holidays: Collection[date] = frozenset()) -> int:
    """Working days (Monday to Friday, not holidays) after ``start``, up to and
    including ``end``."""
    if end <= start:
        return 0
    days = 0
    current = start + timedelta(days=1)
    # Whole weeks first: five working days each, less their holidays.
    whole_weeks = (end - start).days // 7
    if whole_weeks:
        days += whole_weeks * 5
        week_end = start + timedelta(days=whole_weeks * 7)
        days -= sum(1 for h in holidays if start < h <= week_end and h.weekday() < 5)
        current = week_end + timedelta(days=1)
    while current <= end:
        if current.weekday() < 5 and current not in holidays:
            days += 1
        current += timedelta(days=1)
    return days


@dataclass(frozen=True)
class QueueAge:
    hours: float
    working_days: int
    overdue: bool


def queue_age(
    submitted_at: datetime,
    now: datetime,
    holidays: Collection[date] = frozenset(),
    limit: int = REVIEW_WORKING_DAYS,
) -> QueueAge:
    """How long an item has waited, counted on Hong Kong calendar days; overdue
    beyond ``limit`` working days (submitted on a Monday: overdue from the next
    Tuesday)."""
    submitted_at = submitted_at if submitted_at.tzinfo else submitted_at.replace(tzinfo=UTC)
    days = working_days_between(
        submitted_at.astimezone(HONG_KONG).date(), now.astimezone(HONG_KONG).date(), holidays
    )
    hours = max(0.0, (now - submitted_at).total_seconds() / 3600)
    return QueueAge(hours=round(hours, 1), working_days=days, overdue=days > limit)
