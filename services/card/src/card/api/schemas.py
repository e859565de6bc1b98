"""Request and response bodies of the card API."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from card.domain.card import Card, CardHolder
from card.store.slots import Slot

SlotId = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}-\d{4}$")]
Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class CardOut(BaseModel):
    card_no: str
    state: str = Field(description="valid, replaced (by a reissue) or cancelled (withdrawal).")
    surname: str
    given_names: str
    chinese_name: str | None
    programme_code: str
    programme_name: str
    issued_at: datetime
    expires_on: date
    replaces: str | None
    replaced_by: str | None
    collected_at: datetime | None
    collected_by: str | None

    @classmethod
    def of(cls, card: Card) -> CardOut:
        return cls(
            card_no=card.card_no,
            state=card.state.value,
            surname=card.surname,
            given_names=card.given_names,
            chinese_name=card.chinese_name,
            programme_code=card.programme_code,
            programme_name=card.programme_name,
            issued_at=card.issued_at,
            expires_on=card.expires_on,
            replaces=card.replaces,
            replaced_by=card.replaced_by,
            collected_at=card.collected_at,
            collected_by=card.collected_by,
        )


class SlotOut(BaseModel):
    slot_id: str
    venue: str
    starts_at: datetime
    ends_at: datetime
    remaining: int = Field(description="Places still free.")

    @classmethod
    def of(cls, slot: Slot) -> SlotOut:
        return cls(
            slot_id=slot.slot_id,
            venue=slot.venue,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            remaining=slot.remaining,
        )


class StaffSlotOut(SlotOut):
    capacity: int
    booked: int

    @classmethod
    def of(cls, slot: Slot) -> StaffSlotOut:
        return cls(**SlotOut.of(slot).model_dump(), capacity=slot.capacity, booked=slot.booked)


class MyCardOut(BaseModel):
    student_no: str
    status: str = Field(description="awaiting_eligibility, issued, collected or withdrawn.")
    card: CardOut | None = Field(description="The valid card, if one is issued.")
    slot: SlotOut | None = Field(description="The booked collection slot, if any.")
    bring: list[str] = Field(description="What to bring to the collection.")


class MySlotsOut(BaseModel):
    booked_slot_id: str | None
    slots: list[SlotOut] = Field(description="Future slots with free places, earliest first.")


class BookingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slot_id: SlotId


class CardHolderOut(BaseModel):
    student_no: str
    surname: str | None
    given_names: str | None
    programme_code: str | None
    university_email: str | None
    status: str
    registration: str
    photo_approved: bool
    card_no: str | None = Field(description="Number of the valid card, if any.")
    slot_id: str | None
    cards: list[CardOut] = Field(description="Every card issued to the student, oldest first.")

    @classmethod
    def of(cls, holder: CardHolder) -> CardHolderOut:
        p = holder.particulars
        current = holder.current_card
        return cls(
            student_no=holder.student_no,
            surname=p.surname if p else None,
            given_names=p.given_names if p else None,
            programme_code=p.programme_code if p else None,
            university_email=holder.university_email,
            status=holder.status.value,
            registration=holder.registration.value,
            photo_approved=holder.photo is not None,
            card_no=current.card_no if current else None,
            slot_id=holder.slot_id,
            cards=[CardOut.of(c) for c in holder.cards],
        )


class WindowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: time = Field(description="Local (Hong Kong) start time, e.g. 10:00.")
    end: time = Field(description="Local end time, after start.")
    capacity: int = Field(ge=1, le=10_000, description="Students who can collect in it.")


class DayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date: date
    windows: list[WindowIn] = Field(min_length=1, max_length=48)


class ScheduleIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "venue": "Student Card Office, Room 1101, Academic Building",
                    "bring": ["Hong Kong Identity Card, or passport for non-local students"],
                    "days": [
                        {
                            "date": "2026-08-20",
                            "windows": [
                                {"start": "10:00", "end": "11:00", "capacity": 40},
                                {"start": "11:00", "end": "12:00", "capacity": 40},
                            ],
                        }
                    ],
                }
            ]
        },
    )
    venue: Line
    bring: list[Line] = Field(min_length=1, max_length=10)
    days: list[DayIn] = Field(min_length=1, max_length=60)


class ScheduleOut(BaseModel):
    venue: str | None
    bring: list[str]
    slots: list[StaffSlotOut]
