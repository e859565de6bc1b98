"""Collection slots and their capacity.

Capacity is enforced by a conditional update of the slot document (``remaining``
must be positive), so two bookings of the last place conflict on one document:
the unit of work retries the loser, which then finds the slot full.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opr_shared.store.mongo import Transaction, update_by_id
from pymongo import ASCENDING

from card.domain.schedule import SlotPlan
from card.store import COLLECTION_SCHEDULE, COLLECTION_SLOTS

SCHEDULE_ID = "current"
DEFAULT_BRING = (
    "Hong Kong Identity Card, or passport for non-local students",
    "Your student number",
)


class SlotFull(Exception):
    """Every place of the slot is taken."""


class UnknownSlot(LookupError):
    """No slot with this id in the collection schedule."""


class SlotClosed(Exception):
    """The slot has started (or is over): it can no longer be booked."""


@dataclass(frozen=True)
class Slot:
    slot_id: str
    venue: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    booked: int

    @property
    def remaining(self) -> int:
        return max(0, self.capacity - self.booked)


def slot_of(doc: dict[str, Any]) -> Slot:
    return Slot(
        slot_id=doc["_id"],
        venue=doc["venue"],
        starts_at=_utc(doc["starts_at"]),
        ends_at=_utc(doc["ends_at"]),
        capacity=int(doc["capacity"]),
        booked=int(doc["booked"]),
    )


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def get_slot(tx: Transaction, slot_id: str) -> Slot | None:
    doc = await tx.db[COLLECTION_SLOTS].find_one({"_id": slot_id}, session=tx.session)
    return slot_of(doc) if doc else None


async def reserve(tx: Transaction, slot_id: str, now: datetime) -> Slot:
    """Take one place of a future slot; raises :class:`SlotFull` or :class:`UnknownSlot`."""
    doc = await update_by_id(
        tx.db[COLLECTION_SLOTS],
        slot_id,
        {"$inc": {"booked": 1, "remaining": -1}},
        where={"remaining": {"$gt": 0}, "starts_at": {"$gt": now}},
        session=tx.session,
    )
    if doc is not None:
        return slot_of(doc)
    slot = await get_slot(tx, slot_id)
    if slot is None:
        raise UnknownSlot(slot_id)
    if slot.starts_at <= now:
        raise SlotClosed(slot_id)
    raise SlotFull(slot_id)


async def release(tx: Transaction, slot_id: str) -> None:
    await tx.db[COLLECTION_SLOTS].update_one(
        {"_id": slot_id, "booked": {"$gt": 0}},
        {"$inc": {"booked": -1, "remaining": 1}},
        session=tx.session,
    )


async def reserve_earliest(tx: Transaction, now: datetime) -> Slot | None:
    """Take a place in the earliest future slot with room, if there is one."""
    for slot in await open_slots(tx, now, limit=5):
        try:
            return await reserve(tx, slot.slot_id, now)
        except SlotFull:
            continue
    return None


async def open_slots(tx: Transaction, now: datetime, limit: int = 200) -> list[Slot]:
    cursor = (
        tx.db[COLLECTION_SLOTS]
        .find({"starts_at": {"$gt": now}, "remaining": {"$gt": 0}}, session=tx.session)
        .sort("starts_at", ASCENDING)
        .limit(limit)
    )
    return [slot_of(doc) async for doc in cursor]


async def all_slots(tx: Transaction) -> list[Slot]:
    cursor = tx.db[COLLECTION_SLOTS].find({}, session=tx.session).sort("starts_at", ASCENDING)
    return [slot_of(doc) async for doc in cursor]


async def bring_list(tx: Transaction) -> list[str]:
    doc = await tx.db[COLLECTION_SCHEDULE].find_one({"_id": SCHEDULE_ID}, session=tx.session)
    return list(doc["bring"]) if doc else list(DEFAULT_BRING)


async def venue(tx: Transaction) -> str | None:
    doc = await tx.db[COLLECTION_SCHEDULE].find_one({"_id": SCHEDULE_ID}, session=tx.session)
    return str(doc["venue"]) if doc else None


async def replace_schedule(
    tx: Transaction,
    venue: str,
    bring: list[str],
    planned: list[SlotPlan],
    by: str,
    now: datetime,
) -> None:
    """Write the schedule: planned slots upserted (bookings kept), the others removed."""
    slots = tx.db[COLLECTION_SLOTS]
    keep = {plan.slot_id for plan in planned}
    existing = {slot.slot_id: slot for slot in await all_slots(tx)}
    for slot_id in existing.keys() - keep:
        await slots.delete_one({"_id": slot_id, "booked": 0}, session=tx.session)
    for plan in planned:
        booked = existing[plan.slot_id].booked if plan.slot_id in existing else 0
        await slots.update_one(
            {"_id": plan.slot_id},
            {
                "$set": {
                    "venue": plan.venue,
                    "starts_at": plan.starts_at,
                    "ends_at": plan.ends_at,
                    "capacity": plan.capacity,
                    "booked": booked,
                    "remaining": plan.capacity - booked,
                }
            },
            upsert=True,
            session=tx.session,
        )
    await tx.db[COLLECTION_SCHEDULE].update_one(
        {"_id": SCHEDULE_ID},
        {"$set": {"venue": venue, "bring": bring, "updated_by": by, "updated_at": now}},
        upsert=True,
        session=tx.session,
    )
