"""Registration's collections and their indexes."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

REGISTRATIONS = "registrations"

INDEXES: dict[str, list[IndexModel]] = {
    REGISTRATIONS: [IndexModel([("status", ASCENDING), ("record.intake_year", ASCENDING)])],
}
