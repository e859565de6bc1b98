"""What every card use case ends with: issue the card if one is due, offer a slot
if the card has none, translate what happened into catalogue events, save.

This is the one place where the aggregate's internal events become public ones.
"""

from __future__ import annotations

from datetime import UTC, datetime

from opr_shared.events.catalogue import (
    CardCancelled,
    CardCollected,
    CardIssued,
    CardReadyForCollection,
)
from opr_shared.store.mongo import Transaction

from card.domain.card import (
    CardHolder,
    CardWasCancelled,
    CardWasCollected,
    CardWasIssued,
    DomainEvent,
    SlotWasBooked,
)
from card.store import holders, slots
from card.store.numbers import allocate_card_number


async def settle(
    tx: Transaction, holder: CardHolder, events: list[DomainEvent], now: datetime
) -> list[DomainEvent]:
    """Issue what is due, offer a slot, publish ``events`` and the new ones, save."""
    events = list(events)
    if holder.card_due() is not None and holder.particulars is not None:
        number = await allocate_card_number(
            tx, holder.particulars.intake_year, holder.student_no, now
        )
        events += holder.issue(number, now)
    if holder.awaiting_slot:
        slot = await slots.reserve_earliest(tx, now)
        if slot is not None:
            events += holder.book(slot.slot_id)
    await publish(tx, holder, events)
    await holders.save(tx, holder, now)
    return events


async def publish(tx: Transaction, holder: CardHolder, events: list[DomainEvent]) -> None:
    """Translate the aggregate's events into catalogue events (and slot releases)."""
    student_no = holder.student_no
    for event in events:
        if isinstance(event, CardWasIssued):
            card = event.card
            tx.publish(
                CardIssued(
                    card_no=card.card_no,
                    student_no=student_no,
                    surname=card.surname,
                    given_names=card.given_names,
                    chinese_name=card.chinese_name,
                    programme_code=card.programme_code,
                    programme_name=card.programme_name,
                    issued_at=card.issued_at,
                    expires_on=card.expires_on,
                    replaces_card_no=card.replaces,
                ),
                subject=student_no,
            )
            if event.slot_id is not None:
                await announce(tx, student_no, card.card_no, event.slot_id)
        elif isinstance(event, SlotWasBooked):
            if event.released_slot_id is not None:
                await slots.release(tx, event.released_slot_id)
            await announce(tx, student_no, event.card_no, event.slot_id)
        elif isinstance(event, CardWasCancelled):
            if event.released_slot_id is not None:
                await slots.release(tx, event.released_slot_id)
            tx.publish(
                CardCancelled(
                    card_no=event.card_no,
                    student_no=student_no,
                    reason="registration_withdrawn",
                    cancelled_at=datetime.now(UTC),
                ),
                subject=student_no,
            )
        elif isinstance(event, CardWasCollected):
            card = event.card
            assert card.collected_at is not None
            assert card.collected_by is not None
            tx.publish(
                CardCollected(
                    card_no=card.card_no,
                    student_no=student_no,
                    collected_at=card.collected_at,
                    collected_by=card.collected_by,
                ),
                subject=student_no,
            )


async def announce(tx: Transaction, student_no: str, card_no: str, slot_id: str) -> None:
    slot = await slots.get_slot(tx, slot_id)
    if slot is None:
        raise LookupError(f"slot {slot_id} vanished while being booked")
    tx.publish(
        CardReadyForCollection(
            card_no=card_no,
            student_no=student_no,
            slot_id=slot.slot_id,
            venue=slot.venue,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            bring=await slots.bring_list(tx),
        ),
        subject=student_no,
    )
