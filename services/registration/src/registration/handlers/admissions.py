"""Registration records follow the roster."""

from __future__ import annotations

from datetime import UTC, datetime

from opr_shared.events.catalogue import StudentAdmitted, StudentParticularsUpdated
from opr_shared.events.envelope import Envelope
from opr_shared.store.mongo import Transaction

from registration.domain.registration import Cause
from registration.store.repository import intake_for, load_or_stub, publish_all, save


async def on_student_admitted(tx: Transaction, envelope: Envelope, event: StudentAdmitted) -> None:
    """Idempotency key: event id (guard) and student number (an admitted record is
    left alone). Side effects: opens the registration record (prefilled), keeping
    any facts that arrived before it; publishes RegistrationStatusChanged (opened),
    and more if the facts or a closed intake already decide the status."""
    at = datetime.now(UTC)
    registration = await load_or_stub(tx, event.student_no, at)
    intake = await intake_for(tx, event.intake_year, at)
    cause = Cause(envelope.event_type, str(envelope.event_id))
    events = registration.admit(event, intake, at, cause)
    if events:
        await save(tx, registration)
        publish_all(tx, event.student_no, events)


async def on_student_particulars_updated(
    tx: Transaction, envelope: Envelope, event: StudentParticularsUpdated
) -> None:
    """Idempotency key: event id (guard); the update sets absolute values, so a
    replay sets the same. Side effects: the prefill and record follow the roster
    (a record that does not exist yet is opened from the corrected particulars);
    the checklist is re-derived (e.g. a corrected route or date of birth)."""
    at = datetime.now(UTC)
    registration = await load_or_stub(tx, event.student_no, at)
    intake = await intake_for(tx, event.intake_year, at)
    cause = Cause(envelope.event_type, str(envelope.event_id))
    events = registration.correct_particulars(event, intake, at, cause)
    await save(tx, registration)
    publish_all(tx, event.student_no, events)
