"""The documents service learns who may upload."""

from __future__ import annotations

from opr_shared.events.catalogue import StudentAdmitted
from opr_shared.events.envelope import Envelope
from opr_shared.store.mongo import Transaction

from documents.store import OWNERS


async def on_student_admitted(tx: Transaction, envelope: Envelope, event: StudentAdmitted) -> None:
    """Idempotency key: event id (guard) and student number (upsert). Side
    effects: an owner record (who may upload, their intake year and route)."""
    await tx.db[OWNERS].update_one(
        {"_id": event.student_no},
        {
            "$setOnInsert": {
                "intake_year": event.intake_year,
                "admission_route": event.admission_route.value,
                "admitted_at": envelope.occurred_at,
            }
        },
        upsert=True,
        session=tx.session,
    )
