"""The student's own registration: view, draft, submit once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from opr_shared.store.mongo import Transaction, UnitOfWork

from registration.domain.form import FormFields
from registration.domain.intake import Intake
from registration.domain.registration import NotAdmitted, Registration
from registration.store import INTAKES, REGISTRATIONS
from registration.store.repository import intake_for, load, publish_all, save


@dataclass(frozen=True)
class Snapshot:
    registration: Registration
    intake: Intake


async def _admitted(tx: Transaction, student_no: str) -> Registration:
    registration = await load(tx, student_no)
    if registration is None or registration.record is None:
        raise NotAdmitted(student_no)
    return registration


async def view_registration(uow: UnitOfWork, student_no: str) -> Snapshot:
    """The registration and its intake (plain reads: no transaction for a view)."""
    doc = await uow.db[REGISTRATIONS].find_one({"_id": student_no})
    if doc is None or doc.get("record") is None:
        raise NotAdmitted(student_no)
    registration = Registration(doc)
    year = registration.intake_year
    found = await uow.db[INTAKES].find_one({"_id": year}) if year is not None else None
    intake = Intake.from_doc(found) if found else Intake(year or datetime.now(UTC).year)
    return Snapshot(registration, intake)


async def save_draft(uow: UnitOfWork, student_no: str, fields: FormFields) -> Snapshot:
    """Idempotency: saving the same fields again gives the same draft.
    Side effects: the draft is merged with the given fields; refused after submission."""

    async def work(tx: Transaction) -> Snapshot:
        at = datetime.now(UTC)
        registration = await _admitted(tx, student_no)
        intake = await intake_for(tx, registration.intake_year, at)
        registration.save_draft(fields, intake, at)
        await save(tx, registration)
        return Snapshot(registration, intake)

    return await uow.run(work)


async def submit_form(uow: UnitOfWork, student_no: str, fields: FormFields | None) -> Snapshot:
    """Idempotency: the form is accepted once; any later attempt raises AlreadySubmitted
    (two racing submissions conflict and the retried one sees the first).
    Side effects: the form is stored; FormSubmitted is published, and a status
    change if the form was the last compulsory item."""

    async def work(tx: Transaction) -> Snapshot:
        at = datetime.now(UTC)
        registration = await _admitted(tx, student_no)
        intake = await intake_for(tx, registration.intake_year, at)
        events = registration.submit(fields, intake, at)
        await save(tx, registration)
        publish_all(tx, student_no, events)
        return Snapshot(registration, intake)

    return await uow.run(work)
