"""Identity's collections and their indexes (declared here, created at start-up)."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

STUDENTS = "students"
INTAKES = "intakes"
STAFF_USERS = "staff_users"
LOCKOUTS = "lockouts"
LOGIN_ATTEMPTS = "login_attempts"
SIGNING_KEYS = "signing_keys"
ROSTER_IMPORTS = "roster_imports"

# Import progress records are kept a month, then expire.
IMPORT_RETENTION_SECONDS = 30 * 24 * 3600


def indexes(login_audit_retention_days: int) -> dict[str, list[IndexModel]]:
    return {
        STUDENTS: [
            IndexModel(
                [("jupas_app_no", ASCENDING)],
                unique=True,
                partialFilterExpression={"jupas_app_no": {"$type": "string"}},
            ),
            IndexModel(
                [("university_email", ASCENDING)],
                unique=True,
                partialFilterExpression={"university_email": {"$type": "string"}},
            ),
            # The partial unique indexes above keep the values unique; lookups use these
            # plain ones, which every MongoDB-protocol store can plan equality and $in on.
            IndexModel([("jupas_app_no", ASCENDING), ("_id", ASCENDING)]),
            IndexModel([("university_email", ASCENDING), ("_id", ASCENDING)]),
            IndexModel([("invitation.token_hash", ASCENDING)]),
            IndexModel([("invited", ASCENDING), ("intake_year", ASCENDING)]),
        ],
        INTAKES: [],
        STAFF_USERS: [IndexModel([("email", ASCENDING)], unique=True)],
        # Looked up by _id only ("student:<no>" / "staff:<id>").
        LOCKOUTS: [],
        LOGIN_ATTEMPTS: [
            IndexModel(
                [("at", ASCENDING)], expireAfterSeconds=login_audit_retention_days * 24 * 3600
            ),
            IndexModel([("account", ASCENDING), ("at", DESCENDING)]),
        ],
        SIGNING_KEYS: [IndexModel([("created_at", ASCENDING)])],
        ROSTER_IMPORTS: [
            IndexModel([("started_at", ASCENDING)], expireAfterSeconds=IMPORT_RETENTION_SECONDS)
        ],
    }


INDEXES = indexes(400)
