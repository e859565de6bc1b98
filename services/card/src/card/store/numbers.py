"""Allocating card numbers: a counter per intake, advanced inside the issuing transaction.

Two transactions advancing the same counter conflict; the unit of work retries
the loser, which then reads the advanced counter, so no serial is handed out
twice. The ``card_numbers`` collection (card number as ``_id``) makes a
duplicate impossible even so, and maps a number back to its student.
"""

from __future__ import annotations

from datetime import datetime

from opr_shared.store.mongo import Transaction, update_by_id

from card.domain.card_number import card_number
from card.store import CARD_COUNTERS, CARD_NUMBERS


async def allocate_card_number(
    tx: Transaction, intake_year: int, student_no: str, now: datetime
) -> str:
    counter = await update_by_id(
        tx.db[CARD_COUNTERS],
        f"cards-{intake_year}",
        {"$inc": {"seq": 1}},
        upsert=True,
        session=tx.session,
    )
    if counter is None:  # an upsert always leaves a document to read
        raise RuntimeError("card number counter was not created")
    number = card_number(intake_year, int(counter["seq"]))
    await tx.db[CARD_NUMBERS].insert_one(
        {"_id": number, "student_no": student_no, "issued_at": now}, session=tx.session
    )
    return number


async def owner_of(tx: Transaction, card_no: str) -> str | None:
    doc = await tx.db[CARD_NUMBERS].find_one({"_id": card_no}, session=tx.session)
    return str(doc["student_no"]) if doc else None
