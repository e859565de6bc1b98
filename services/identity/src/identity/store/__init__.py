"""Identity's collections and their indexes (declared here, created at start-up)."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

STUDENTS = "students"
INTAKES = "intakes"

INDEXES: dict[str, list[IndexModel]] = {
    STUDENTS: [
        IndexModel(
            [("jupas_app_no", ASCENDING)],
            unique=True,
            partialFilterExpression={"jupas_app_no": {"$type": "string"}},
        ),
        IndexModel([("invitation.token_hash", ASCENDING)]),
        IndexModel([("invited", ASCENDING), ("intake_year", ASCENDING)]),
    ],
    INTAKES: [],
}
