"""The documents service learns who may upload, their intake and what they must upload."""

from __future__ import annotations

from opr_shared.events.catalogue import FormSubmitted, StudentAdmitted, StudentParticularsUpdated
from opr_shared.events.envelope import Envelope
from opr_shared.store.mongo import Transaction

from documents.store import OWNERS


async def on_student_admitted(tx: Transaction, envelope: Envelope, event: StudentAdmitted) -> None:
    """Idempotency key: event id (guard) and student number (upsert). Side
    effects: an owner record (who may upload, their intake year and route)."""
    await tx.db[OWNERS].update_one(
        {"_id": event.student_no},
        {
            # Identity is the authority on the intake: it overrides what a
            # FormSubmitted that arrived first may have recorded.
            "$set": {
                "intake_year": event.intake_year,
                "admission_route": event.admission_route.value,
            },
            "$setOnInsert": {"admitted_at": envelope.occurred_at},
        },
        upsert=True,
        session=tx.session,
    )


async def on_student_particulars_updated(
    tx: Transaction, envelope: Envelope, event: StudentParticularsUpdated
) -> None:
    """Idempotency key: event id (guard) and student number (upsert; the full
    particulars, so applying it twice is harmless). Side effects: the owner's
    intake year and route follow a corrected roster row (the 1 September
    cut-off of identity documents depends on the intake year)."""
    await tx.db[OWNERS].update_one(
        {"_id": event.student_no},
        {
            "$set": {
                "intake_year": event.intake_year,
                "admission_route": event.admission_route.value,
            },
            "$setOnInsert": {"admitted_at": envelope.occurred_at},
        },
        upsert=True,
        session=tx.session,
    )


async def on_form_submitted(tx: Transaction, envelope: Envelope, event: FormSubmitted) -> None:
    """Idempotency key: event id (guard) and student number (upsert; the form is
    submitted once). Side effects: the owner record keeps the residency and the
    documents the student must upload. Identity numbers in the event are neither
    stored nor logged here."""
    await tx.db[OWNERS].update_one(
        {"_id": event.student_no},
        {
            "$set": {
                "residency": event.residency.value,
                "required_documents": [d.value for d in event.required_documents],
                "form_submitted_at": event.submitted_at,
            },
            # It may arrive before StudentAdmitted (another producer): the intake
            # year is on the form too.
            "$setOnInsert": {"intake_year": event.intake_year},
        },
        upsert=True,
        session=tx.session,
    )
