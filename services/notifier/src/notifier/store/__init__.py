"""Notifier's collections and their indexes (every query path has one)."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

NOTIFICATIONS = "notifications"  # the delivery log and every student's inbox
CONTACTS = "contacts"  # names and addresses per student (by student number, the _id)
INTAKES = "intakes"  # deadline and term start per intake year (the _id)
PROGRESS = "progress"  # outstanding compulsory items per student, for reminders

INDEXES: dict[str, list[IndexModel]] = {
    NOTIFICATIONS: [
        IndexModel([("dedupe_key", ASCENDING)], unique=True),
        # Delivery: what is due, and claims whose lease ran out.
        IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("lease_until", ASCENDING)]),
        # Staff list by status; the student's inbox; parked ones released per student.
        IndexModel([("status", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("student_no", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("student_no", ASCENDING), ("status", ASCENDING)]),
    ],
    CONTACTS: [],
    INTAKES: [],
    PROGRESS: [IndexModel([("intake_year", ASCENDING), ("needs_reminder", ASCENDING)])],
}
