"""Who still owes compulsory items, and when a deadline reminder is due.

Registration publishes the outstanding checklist on every status change; between
changes, document and photo events say what the student did since. Events from
different producers arrive in any order, so every item keeps the moment its
state was observed (``as_of``) and an older observation never overwrites a
newer one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from notifier.domain.wording import hk_date

REMINDER_DAYS_BEFORE: tuple[int, ...] = (7, 3, 1)
OWED = frozenset({"missing", "rejected"})
DONE = "done"


def new_progress(student_no: str) -> dict[str, Any]:
    return {"_id": student_no, "status": None, "status_at": None, "items": {}}


def _newer(at: datetime, than: Any) -> bool:
    return than is None or at >= than


def apply_status(
    progress: dict[str, Any],
    *,
    intake_year: int,
    status: str,
    outstanding: Iterable[dict[str, Any]],
    at: datetime,
) -> dict[str, Any]:
    """A status change with the full outstanding list as of ``at``."""
    result = {**progress, "items": {k: dict(v) for k, v in progress["items"].items()}}
    result["intake_year"] = intake_year
    if _newer(at, progress.get("status_at")):
        result["status"], result["status_at"] = status, at
    listed = set()
    for entry in outstanding:
        key = str(entry["item"])
        listed.add(key)
        item = result["items"].setdefault(key, {"state": None, "as_of": None})
        item["label"], item["compulsory"] = entry["label"], bool(entry["compulsory"])
        if _newer(at, item["as_of"]):
            item["state"], item["as_of"] = str(entry["state"]), at
    for key, item in result["items"].items():
        if key not in listed and _newer(at, item["as_of"]):
            item["state"], item["as_of"] = DONE, at
    return _summarise(result)


def apply_item(progress: dict[str, Any], key: str, state: str, at: datetime) -> dict[str, Any]:
    """What the student or a reviewer did to one item (uploaded, rejected, done) at ``at``."""
    result = {**progress, "items": {k: dict(v) for k, v in progress["items"].items()}}
    item = result["items"].setdefault(key, {"state": None, "as_of": None})
    if _newer(at, item["as_of"]):
        item["state"], item["as_of"] = state, at
    return _summarise(result)


def may_leave_summary(state: str) -> bool:
    """Whether an item observed in ``state`` may be recorded without working out
    ``needs_reminder`` again.

    Only an item missing or rejected makes a reminder due; one handed in or done
    can only end that need. Left as it was, the flag may say a reminder is
    needed when none is, never the other way round, and the reminder pass looks
    at what is owed before it sends anything. The next status change sets it
    exactly again.
    """
    return state not in OWED


def owed(progress: dict[str, Any]) -> list[dict[str, Any]]:
    """Compulsory items the student still has to provide (missing, or rejected)."""
    return [
        {"item": key, "label": item.get("label") or key, "state": item["state"]}
        for key, item in sorted(progress["items"].items())
        if item.get("compulsory") and item.get("state") in OWED
    ]


def _summarise(progress: dict[str, Any]) -> dict[str, Any]:
    progress["needs_reminder"] = progress.get("status") == "in_progress" and bool(owed(progress))
    return progress


def reminder_date(
    deadline: datetime, now: datetime, days_before: Iterable[int] = REMINDER_DAYS_BEFORE
) -> date | None:
    """The latest reminder day (Hong Kong calendar) reached before the deadline, if any.

    A service that was down on one reminder day sends the next one only: a
    student gets at most one reminder per reminder day, and never a stale one.
    """
    if now >= deadline:
        return None
    today, last_day = hk_date(now), hk_date(deadline)
    reached = [last_day - timedelta(days=d) for d in days_before]
    reached = [d for d in reached if d <= today]
    return max(reached) if reached else None
