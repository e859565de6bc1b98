"""Loading and saving registrations and intakes inside a unit-of-work transaction."""

from __future__ import annotations

from datetime import datetime

from opr_shared.events.envelope import EventPayload
from opr_shared.store.mongo import Transaction

from registration.domain.intake import Intake
from registration.domain.registration import Registration
from registration.store import INTAKES, REGISTRATIONS


async def load(tx: Transaction, student_no: str) -> Registration | None:
    doc = await tx.db[REGISTRATIONS].find_one({"_id": student_no}, session=tx.session)
    return Registration(doc) if doc is not None else None


async def load_or_stub(tx: Transaction, student_no: str, at: datetime) -> Registration:
    """The student's registration; a stub keeping facts when the admission has not arrived."""
    return await load(tx, student_no) or Registration.stub(student_no, at)


async def save(tx: Transaction, registration: Registration) -> None:
    await tx.db[REGISTRATIONS].replace_one(
        {"_id": registration.student_no}, registration.doc, upsert=True, session=tx.session
    )


async def find_intake(tx: Transaction, year: int) -> Intake | None:
    doc = await tx.db[INTAKES].find_one({"_id": year}, session=tx.session)
    return Intake.from_doc(doc) if doc is not None else None


async def intake_for(tx: Transaction, year: int | None, at: datetime) -> Intake:
    """The calendar of ``year``; an empty one (default cut-offs) when it is not scheduled."""
    if year is None:
        return Intake(at.year)
    return await find_intake(tx, year) or Intake(year)


async def save_intake(tx: Transaction, intake: Intake) -> None:
    await tx.db[INTAKES].replace_one(
        {"_id": intake.year}, intake.to_doc(), upsert=True, session=tx.session
    )


def publish_all(tx: Transaction, student_no: str, events: list[EventPayload]) -> None:
    for event in events:
        tx.publish(event, subject=student_no)
