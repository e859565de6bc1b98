"""What every card use case ends with: issue the card if one is due, translate
what happened into catalogue events, save; and the slot offer that follows an issue.

This is the one place where the aggregate's internal events become public ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
from card.store.holders import Document
from card.store.numbers import CardNumbers


@dataclass
class Issuing:
    """Issues the cards that are due; slots are offered right after, apart.

    Every issue in a burst books "the earliest slot with room": one document all of
    them would update. Booking it in the issuing transaction made those
    transactions conflict and run again (photo copy included). The issuing
    transaction now only marks the card as awaiting a slot and, once committed,
    wakes the slot-offer sweep of this process (``offer_slots``), which books
    the waiting cards one at a time in issue order (``offer_slot``).
    """

    numbers: CardNumbers
    offer_slots: Callable[[], None] = lambda: None

    async def settle(
        self,
        tx: Transaction,
        holder: CardHolder,
        events: list[DomainEvent],
        now: datetime,
        *,
        stored: Document | None = None,
    ) -> list[DomainEvent]:
        """Issue what is due, publish ``events`` and the new ones, save.

        ``stored``: the holder's state as loaded (``holders.load_for_change``);
        a holder that is still in that state, with nothing to publish, is not
        written again. None: saved in any case (a holder not stored yet)."""
        events = list(events)
        if holder.card_due() is not None and holder.particulars is not None:
            number = await self.numbers.allocate(
                tx, holder.particulars.intake_year, holder.student_no, now
            )
            events += holder.issue(number, now)
        if events or stored is None or holders.state_of(holder) != stored:
            await publish(tx, holder, events)
            await holders.save(tx, holder, now)
        if holder.awaiting_slot:
            tx.after_commit(self.offer_slots)
        return events


async def offer_slot(tx: Transaction, holder: CardHolder, now: datetime) -> bool:
    """Book the earliest future slot with room for a card awaiting one
    (``holder.awaiting_slot``), publish the offer, save. Answers False when no slot
    has room (the card keeps waiting)."""
    slot = await slots.reserve_earliest(tx, now)
    if slot is None:
        return False
    await publish(tx, holder, holder.book(slot.slot_id))
    await holders.save(tx, holder, now)
    return True


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
