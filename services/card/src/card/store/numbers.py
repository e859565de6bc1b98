"""Allocating card numbers: serials handed out from blocks reserved ahead.

A counter per intake (``card_counters``) holds the last serial reserved. A card
process reserves a block of serials with one atomic increment, outside any
transaction, and hands them out one by one. Issuing transactions therefore never
update one shared document (when they did, every issue in a burst conflicted
with the others on the counter and ran again). Two processes get disjoint
blocks; the ``card_numbers`` collection (card number as ``_id``) makes a
duplicate impossible even so, and maps a number back to its student.

Serials are unique and increase within a block, but are not contiguous: a
transaction that is rolled back, or a process that stops, leaves its serials
unused. Nothing reads meaning into the gaps: a card number identifies a card.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from datetime import datetime

from opr_shared.store.mongo import Document, Transaction
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from card.domain.card_number import card_number
from card.store import CARD_COUNTERS, CARD_NUMBERS

DEFAULT_BLOCK = 20


class CardNumbers:
    """The serials this process has reserved and not yet handed out, per intake."""

    def __init__(self, block: int = DEFAULT_BLOCK) -> None:
        if block < 1:
            raise ValueError(f"a block holds at least one serial, got {block}")
        self.block = block
        self._free: dict[int, deque[int]] = {}
        self._lock = asyncio.Lock()

    async def allocate(
        self, tx: Transaction, intake_year: int, student_no: str, now: datetime
    ) -> str:
        """A fresh card number for ``student_no``, recorded in the transaction."""
        serial = await self._next_serial(tx.db, intake_year)
        number = card_number(intake_year, serial)
        await tx.db[CARD_NUMBERS].insert_one(
            {"_id": number, "student_no": student_no, "issued_at": now}, session=tx.session
        )
        return number

    async def _next_serial(self, db: AsyncDatabase[Document], intake_year: int) -> int:
        async with self._lock:
            free = self._free.setdefault(intake_year, deque())
            if not free:
                last = await reserve_block(db, intake_year, self.block)
                free.extend(range(last - self.block + 1, last + 1))
            return free.popleft()


async def reserve_block(db: AsyncDatabase[Document], intake_year: int, size: int) -> int:
    """Reserve ``size`` serials of the intake; answers the last one reserved.

    A single-document atomic update, on purpose outside the caller's
    transaction: it commits at once, so no transaction waits on (or conflicts
    over) the counter. It must be one command: an update and a read after it
    (``update_by_id``) could read another caller's increment and hand one block
    out twice. (The counters are one document per intake, so SecantusDB's
    scanning of findAndModify filters costs nothing here.)"""
    counters = db[CARD_COUNTERS]
    key = f"cards-{intake_year}"
    for _ in range(2):
        counter = await counters.find_one_and_update(
            {"_id": key}, {"$inc": {"seq": size}}, return_document=ReturnDocument.AFTER
        )
        if counter is not None:
            return int(counter["seq"])
        # The intake's first reservation creates the counter, then increments it.
        # (Not an upsert: SecantusDB answered one of two racing upserts with no
        # document although it had applied the increment, and the block was lost.)
        with contextlib.suppress(DuplicateKeyError):
            await counters.insert_one({"_id": key, "seq": 0})
    raise RuntimeError(f"no card serials could be reserved for intake {intake_year}")


async def owner_of(tx: Transaction, card_no: str) -> str | None:
    doc = await tx.db[CARD_NUMBERS].find_one({"_id": card_no}, session=tx.session)
    return str(doc["student_no"]) if doc else None
