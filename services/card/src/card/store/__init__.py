"""Card's collections and their indexes (every query path is indexed here)."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

CARD_HOLDERS = "card_holders"  # one per student: the aggregate, with every card issued
CARD_NUMBERS = "card_numbers"  # _id = card number -> student number; uniqueness and lookup
CARD_COUNTERS = "card_counters"  # _id = "cards-<intake year>" -> last serial reserved
COLLECTION_SLOTS = "collection_slots"  # _id = slot id: venue, window, capacity, bookings
COLLECTION_SCHEDULE = "collection_schedule"  # _id = "current": venue and what to bring

INDEXES: dict[str, list[IndexModel]] = {
    CARD_HOLDERS: [
        IndexModel([("status", ASCENDING)]),
        # The slot-offer sweep looks for issued cards still without a slot, oldest
        # card number first.
        IndexModel([("awaiting_slot", ASCENDING), ("card_no", ASCENDING)]),
    ],
    CARD_NUMBERS: [IndexModel([("student_no", ASCENDING)])],
    # Open slots in time order: offers and the student's list of slots.
    COLLECTION_SLOTS: [IndexModel([("starts_at", ASCENDING), ("remaining", ASCENDING)])],
}
