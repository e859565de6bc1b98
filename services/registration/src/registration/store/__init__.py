"""Registration's collections and their indexes (every query path is indexed)."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

REGISTRATIONS = "registrations"
INTAKES = "intakes"

INDEXES: dict[str, list[IndexModel]] = {
    REGISTRATIONS: [
        # staff list filtered by status (and intake)
        IndexModel([("status", ASCENDING), ("intake_year", ASCENDING)]),
        # closing an intake: its records the deadline was not yet applied to
        IndexModel([("intake_year", ASCENDING), ("deadline_applied_at", ASCENDING)]),
        # staff list filtered by outstanding item
        IndexModel([("outstanding_items", ASCENDING), ("status", ASCENDING)]),
        # staff text search: lower-cased words (names, numbers, emails), prefix match
        IndexModel([("search_terms", ASCENDING)]),
    ],
    INTAKES: [],
}
