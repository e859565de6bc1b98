"""The intake calendar, and applying its deadline."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from opr_shared.events.catalogue import intake_subject
from opr_shared.store.mongo import Transaction, UnitOfWork
from pymongo.errors import DuplicateKeyError

from registration.domain.intake import Intake, schedule
from registration.store import INTAKES, REGISTRATIONS
from registration.store.repository import find_intake, load, publish_all, save, save_intake

log = logging.getLogger(__name__)


class UnknownIntake(LookupError):
    """No calendar was set for this intake."""


class DeadlineNotPassed(Exception):
    """The intake cannot be closed before its registration deadline."""


async def schedule_intake(
    uow: UnitOfWork,
    year: int,
    registration_deadline: datetime,
    term_start: date,
    age_cutoff: date | None,
) -> tuple[Intake, bool]:
    """Idempotency: setting the same calendar again changes nothing and publishes
    nothing. Side effects: stores the calendar; publishes IntakeScheduled (subject
    ``intake:<year>``) when it changed. Raises InvalidIntake for dates that do not fit."""

    async def work(tx: Transaction) -> tuple[Intake, bool]:
        current = await find_intake(tx, year)
        intake = schedule(year, registration_deadline, term_start, age_cutoff, current=current)
        if current is not None and current.to_doc() == intake.to_doc():
            return current, False
        await save_intake(tx, intake)
        tx.publish(intake.scheduled(), subject=intake_subject(year))
        return intake, True

    return await uow.run(work)


async def list_intakes(uow: UnitOfWork) -> list[Intake]:
    return [Intake.from_doc(d) async for d in uow.db[INTAKES].find({}).sort("_id", 1)]


async def get_intake(uow: UnitOfWork, year: int) -> Intake:
    doc = await uow.db[INTAKES].find_one({"_id": year})
    if doc is None:
        raise UnknownIntake(year)
    return Intake.from_doc(doc)


@dataclass
class CloseReport:
    intake_year: int
    closed_at: datetime
    already_closed: bool
    applied: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


async def close_intake(uow: UnitOfWork, year: int) -> CloseReport:
    """Apply the registration deadline to every record of the intake.

    Idempotency: the intake is marked closed once; each record once (its
    ``deadline_applied_at``), so closing again, or resuming an interrupted close,
    only handles records not yet done. Side effects: per record, in its own
    transaction, the status moves to Withdrawn / Incomplete (or stays Completed)
    with RegistrationStatusChanged and the specific event.
    Raises UnknownIntake, DeadlineNotPassed.
    """

    async def mark(tx: Transaction) -> tuple[Intake, bool]:
        intake = await find_intake(tx, year)
        if intake is None:
            raise UnknownIntake(year)
        if intake.closed:
            return intake, True
        now = datetime.now(UTC)
        deadline = intake.registration_deadline
        if deadline is None or deadline > now:
            raise DeadlineNotPassed(
                f"the registration deadline of intake {year} "
                f"({deadline.isoformat() if deadline else 'not set'}) has not passed yet"
            )
        closed = Intake(
            year=intake.year,
            registration_deadline=intake.registration_deadline,
            term_start=intake.term_start,
            age_cutoff=intake.age_cutoff,
            closed_at=now,
        )
        await save_intake(tx, closed)
        return closed, False

    intake, already_closed = await uow.run(mark)
    assert intake.closed_at is not None
    report = CloseReport(year, intake.closed_at, already_closed)
    pending = uow.db[REGISTRATIONS].find(
        {"intake_year": year, "deadline_applied_at": None}, {"_id": 1}
    )
    numbers = [d["_id"] async for d in pending]
    outcomes: Counter[str] = Counter()
    for student_no in numbers:

        async def apply(tx: Transaction, number: str = student_no) -> str | None:
            registration = await load(tx, number)
            if registration is None or registration.record is None:
                return None
            events = registration.apply_deadline(intake, datetime.now(UTC))
            await save(tx, registration)
            publish_all(tx, number, events)
            return registration.status.value if registration.status else None

        status = await uow.run(apply)
        if status is not None:
            outcomes[status] += 1
    report.applied = sum(outcomes.values())
    report.outcomes = dict(outcomes)
    return report


async def seed_demo_intake(
    uow: UnitOfWork, year: int, registration_deadline: datetime, term_start: date, cutoff: date
) -> bool:
    """Schedule the demo intake when no intake exists at all (development and test).

    Idempotency: does nothing once any intake exists; two replicas starting at
    once conflict on the intake's key and one of them wins."""

    async def work(tx: Transaction) -> bool:
        if await tx.db[INTAKES].find_one({}, {"_id": 1}, session=tx.session) is not None:
            return False
        intake = schedule(year, registration_deadline, term_start, cutoff)
        await tx.db[INTAKES].insert_one(intake.to_doc(), session=tx.session)
        tx.publish(intake.scheduled(), subject=intake_subject(year))
        return True

    try:
        seeded = await uow.run(work)
    except DuplicateKeyError:
        return False
    if seeded:
        log.info("demo intake scheduled", extra={"intake_year": year})
    return seeded
