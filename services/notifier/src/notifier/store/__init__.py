"""Notifier's collections and their indexes."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

NOTIFICATIONS = "notifications"

INDEXES: dict[str, list[IndexModel]] = {
    NOTIFICATIONS: [
        IndexModel([("dedupe_key", ASCENDING)], unique=True),
        IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)]),
        IndexModel([("student_no", ASCENDING), ("created_at", DESCENDING)]),
    ],
}
