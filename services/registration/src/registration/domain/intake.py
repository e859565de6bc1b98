"""The calendar of an intake: registration deadline, term start, age cut-off."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from opr_shared.events.catalogue import IntakeScheduled

HONG_KONG = timezone(timedelta(hours=8), "HKT")


class InvalidIntake(ValueError):
    """The dates of an intake do not fit together."""


@dataclass(frozen=True)
class Intake:
    year: int
    registration_deadline: datetime | None = None
    term_start: date | None = None
    age_cutoff: date | None = None
    closed_at: datetime | None = None

    @property
    def cutoff(self) -> date:
        """The day 'under 18' is judged on: 1 September of the intake year by default."""
        return self.age_cutoff or date(self.year, 9, 1)

    @property
    def validity_cutoff(self) -> date:
        """Identity documents expiring on or before this day cannot establish local status."""
        return date(self.year, 9, 1)

    @property
    def deadline_day(self) -> date | None:
        """The deadline's date in Hong Kong."""
        if self.registration_deadline is None:
            return None
        return self.registration_deadline.astimezone(HONG_KONG).date()

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    def due_by(self, compulsory: bool) -> date | None:
        return self.deadline_day if compulsory else self.term_start

    def scheduled(self) -> IntakeScheduled:
        if self.registration_deadline is None or self.term_start is None:
            raise InvalidIntake("the intake has no calendar yet")
        return IntakeScheduled(
            intake_year=self.year,
            registration_deadline=self.registration_deadline,
            term_start=self.term_start,
            age_cutoff=self.cutoff,
        )

    def to_doc(self) -> dict[str, Any]:
        return {
            "_id": self.year,
            "registration_deadline": self.registration_deadline,
            "term_start": self.term_start.isoformat() if self.term_start else None,
            "age_cutoff": self.cutoff.isoformat(),
            "closed_at": self.closed_at,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Intake:
        deadline = doc.get("registration_deadline")
        if isinstance(deadline, datetime) and deadline.tzinfo is None:
            deadline = deadline.replace(tzinfo=UTC)
        return cls(
            year=int(doc["_id"]),
            registration_deadline=deadline,
            term_start=date.fromisoformat(doc["term_start"]) if doc.get("term_start") else None,
            age_cutoff=date.fromisoformat(doc["age_cutoff"]) if doc.get("age_cutoff") else None,
            closed_at=doc.get("closed_at"),
        )


def schedule(
    year: int,
    registration_deadline: datetime,
    term_start: date,
    age_cutoff: date | None = None,
    *,
    current: Intake | None = None,
) -> Intake:
    """The intake with a new calendar; refuses dates that do not fit together."""
    if current is not None and current.closed:
        raise InvalidIntake(f"intake {year} is closed: its calendar can no longer change")
    if registration_deadline.tzinfo is None:
        raise InvalidIntake("registration_deadline needs a timezone, e.g. 2027-08-13T17:00+08:00")
    # Stored with millisecond precision (BSON dates): keep only that much.
    deadline = registration_deadline.astimezone(UTC)
    deadline = deadline.replace(microsecond=deadline.microsecond // 1000 * 1000)
    intake = Intake(
        year=year,
        registration_deadline=deadline,
        term_start=term_start,
        age_cutoff=age_cutoff or date(year, 9, 1),
    )
    deadline_day = intake.deadline_day
    assert deadline_day is not None
    if deadline_day > term_start:
        raise InvalidIntake("the registration deadline must not be after the term start")
    if abs(term_start.year - year) > 1:
        raise InvalidIntake(f"the term of intake {year} must start in or around {year}")
    return intake
