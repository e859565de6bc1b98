"""Registration records follow the roster."""

from __future__ import annotations

from opr_shared.events.catalogue import StudentAdmitted, StudentParticularsUpdated
from opr_shared.events.envelope import Envelope
from opr_shared.store.mongo import Transaction

from registration.domain.registration import corrected_particulars, new_registration
from registration.store import REGISTRATIONS


async def on_student_admitted(tx: Transaction, envelope: Envelope, event: StudentAdmitted) -> None:
    """Idempotency key: event id (guard) and student number (a record that exists
    is left alone). Side effects: creates the registration record."""
    registrations = tx.db[REGISTRATIONS]
    if await registrations.find_one({"_id": event.student_no}, {"_id": 1}, session=tx.session):
        return
    await registrations.insert_one(
        new_registration(event, envelope.occurred_at), session=tx.session
    )


async def on_student_particulars_updated(
    tx: Transaction, envelope: Envelope, event: StudentParticularsUpdated
) -> None:
    """Idempotency key: event id (guard); the update sets absolute values, so a
    replay sets the same. Side effects: the prefill and record follow the roster;
    a record that does not exist yet is created from the corrected particulars."""
    registrations = tx.db[REGISTRATIONS]
    found = await registrations.find_one({"_id": event.student_no}, {"_id": 1}, session=tx.session)
    if found is None:
        admitted = StudentAdmitted.model_validate(event.model_dump())
        await registrations.insert_one(
            new_registration(admitted, envelope.occurred_at), session=tx.session
        )
        return
    await registrations.update_one(
        {"_id": event.student_no}, {"$set": corrected_particulars(event)}, session=tx.session
    )
