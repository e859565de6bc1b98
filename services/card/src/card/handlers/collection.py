"""Card office and student commands: the schedule, bookings, collection, slot offers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from opr_shared.store.mongo import Transaction, UnitOfWork
from pymongo import ASCENDING

from card.domain.card import Card, CardHolder, CardRefused
from card.domain.schedule import Day, check_bookings_kept, plan_slots
from card.handlers.issuing import offer_slot, publish
from card.store import CARD_HOLDERS, holders, slots
from card.store.numbers import owner_of


class NotFound(LookupError):
    """What the command names does not exist; the message is for the user."""


@dataclass(frozen=True)
class Schedule:
    venue: str | None
    bring: list[str]
    slots: list[slots.Slot]


async def put_schedule(
    uow: UnitOfWork, venue: str, bring: list[str], days: list[Day], by: str
) -> Schedule:
    """Replace the collection schedule; refuses (ScheduleRefused) to drop bookings.

    Side effects: slots upserted and removed; issued cards still waiting for a
    slot get one from the slot-offer sweep."""
    planned = plan_slots(venue, days)

    async def work(tx: Transaction) -> Schedule:
        now = datetime.now(UTC)
        booked = {slot.slot_id: slot.booked for slot in await slots.all_slots(tx)}
        check_bookings_kept(planned, booked)
        await slots.replace_schedule(tx, venue, bring, planned, by, now)
        return Schedule(venue=venue, bring=bring, slots=await slots.all_slots(tx))

    return await uow.run(work)


async def get_schedule(uow: UnitOfWork) -> Schedule:
    async def work(tx: Transaction) -> Schedule:
        return Schedule(
            venue=await slots.venue(tx),
            bring=await slots.bring_list(tx),
            slots=await slots.all_slots(tx),
        )

    return await uow.run(work)


async def book_slot(uow: UnitOfWork, student_no: str, slot_id: str) -> CardHolder:
    """A student books (or changes) the collection slot of their card.

    Raises CardRefused (no card, collected), slots.UnknownSlot, slots.SlotClosed or
    slots.SlotFull; booking the slot already booked changes nothing. Side effects:
    one place taken, the previous one released, CardReadyForCollection."""

    async def work(tx: Transaction) -> CardHolder:
        now = datetime.now(UTC)
        holder = await holders.load(tx, student_no)
        if holder is None:
            raise CardRefused("no card has been issued yet")
        events = holder.book(slot_id)  # refuses before any place is taken
        if not events:
            return holder
        await slots.reserve(tx, slot_id, now)
        await publish(tx, holder, events)
        await holders.save(tx, holder, now)
        return holder

    return await uow.run(work)


async def mark_collected(uow: UnitOfWork, card_no: str, by: str) -> tuple[CardHolder, Card]:
    """Staff hand a card over. Idempotency key: card number (marking it again changes
    nothing). Side effects: the card's collection time and staff id; CardCollected."""

    async def work(tx: Transaction) -> tuple[CardHolder, Card]:
        now = datetime.now(UTC)
        student_no = await owner_of(tx, card_no)
        holder = await holders.load(tx, student_no) if student_no else None
        if holder is None:
            raise NotFound(f"no card with number {card_no}")
        events = holder.collect(card_no, by, now)
        await publish(tx, holder, events)
        await holders.save(tx, holder, now)
        card = holder.card(card_no)
        assert card is not None
        return holder, card

    return await uow.run(work)


async def offer_waiting_slots(uow: UnitOfWork, limit: int = 50) -> int:
    """Offer a slot to issued cards still without one: just issued, or waiting for
    the card office to publish (or enlarge) the schedule.

    Oldest card numbers first, so cards get the slots in the order they were
    issued; each card in its own transaction. Idempotency key: the holder's
    awaiting-slot flag, re-read in the transaction. Side effects: a place taken,
    CardReadyForCollection. Answers how many cards got a slot."""
    cursor = (
        uow.db[CARD_HOLDERS]
        .find({"awaiting_slot": True}, {"_id": 1})
        .sort("card_no", ASCENDING)
        .limit(limit)
    )
    waiting = [doc["_id"] async for doc in cursor]
    offered = 0
    for student_no in waiting:

        async def work(tx: Transaction, student_no: str = student_no) -> bool | None:
            holder = await holders.load(tx, student_no)
            if holder is None or not holder.awaiting_slot:
                return None  # booked meanwhile (another replica, or the student)
            return await offer_slot(tx, holder, datetime.now(UTC))

        booked = await uow.run(work)
        if booked:
            offered += 1
        elif booked is False:
            break  # no room left: wait for the card office to add some
    return offered
