"""Card's collections and their indexes."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

CARD_HOLDERS = "card_holders"

INDEXES: dict[str, list[IndexModel]] = {
    CARD_HOLDERS: [IndexModel([("status", ASCENDING)])],
}
