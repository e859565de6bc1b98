"""Reads for the HTTP API, outside any transaction (a single document each, or an
indexed range): cheaper than a transaction and consistent enough for a view."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING

from card.domain.card import CardHolder
from card.store import CARD_HOLDERS, CARD_NUMBERS, COLLECTION_SCHEDULE, COLLECTION_SLOTS
from card.store.holders import from_document
from card.store.slots import DEFAULT_BRING, SCHEDULE_ID, Slot, slot_of


async def holder(db: Any, student_no: str) -> CardHolder | None:
    doc = await db[CARD_HOLDERS].find_one({"_id": student_no})
    return from_document(doc) if doc else None


async def holder_of_card(db: Any, card_no: str) -> CardHolder | None:
    doc = await db[CARD_NUMBERS].find_one({"_id": card_no})
    return await holder(db, doc["student_no"]) if doc else None


async def slot(db: Any, slot_id: str) -> Slot | None:
    doc = await db[COLLECTION_SLOTS].find_one({"_id": slot_id})
    return slot_of(doc) if doc else None


async def open_slots(db: Any, now: datetime, limit: int = 200) -> list[Slot]:
    cursor = (
        db[COLLECTION_SLOTS]
        .find({"starts_at": {"$gt": now}, "remaining": {"$gt": 0}})
        .sort("starts_at", ASCENDING)
        .limit(limit)
    )
    return [slot_of(doc) async for doc in cursor]


async def bring(db: Any) -> list[str]:
    doc = await db[COLLECTION_SCHEDULE].find_one({"_id": SCHEDULE_ID})
    return list(doc["bring"]) if doc else list(DEFAULT_BRING)
