"""Documents' collections and their indexes."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

OWNERS = "owners"

INDEXES: dict[str, list[IndexModel]] = {
    OWNERS: [IndexModel([("intake_year", ASCENDING)])],
}
