"""Loading and saving the card-holder aggregate (one document per student)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

from opr_shared.store.mongo import Transaction

from card.domain.card import (
    Card,
    CardHolder,
    CardState,
    Particulars,
    Photo,
    RegistrationState,
)
from card.store import CARD_HOLDERS

Document = dict[str, Any]


def to_document(holder: CardHolder, now: datetime) -> Document:
    """The document :func:`save` writes, written at ``now``."""
    return {**state_of(holder), "updated_at": now}


def state_of(holder: CardHolder) -> Document:
    """What is stored of ``holder``, but the time it was written."""
    cards = []
    for card in holder.cards:
        row = asdict(card)
        row["state"] = card.state.value
        row["expires_on"] = card.expires_on.isoformat()  # BSON has no date type
        cards.append(row)
    current = holder.current_card
    return {
        "_id": holder.student_no,
        "status": holder.status.value,
        "awaiting_slot": holder.awaiting_slot,
        "card_no": current.card_no if current else None,
        "particulars": asdict(holder.particulars) if holder.particulars else None,
        "registration": holder.registration.value,
        "photo": asdict(holder.photo) if holder.photo else None,
        "cards": cards,
        "slot_id": holder.slot_id,
        "university_email": holder.university_email,
    }


def from_document(doc: Document) -> CardHolder:
    photo = doc.get("photo")
    particulars = doc.get("particulars")
    return CardHolder(
        student_no=doc["_id"],
        particulars=Particulars(**particulars) if particulars else None,
        registration=RegistrationState(doc.get("registration", RegistrationState.PENDING)),
        photo=Photo(**{**photo, "approved_at": _utc(photo["approved_at"])}) if photo else None,
        cards=[_card(row) for row in doc.get("cards", [])],
        slot_id=doc.get("slot_id"),
        university_email=doc.get("university_email"),
    )


def _card(row: Document) -> Card:
    return Card(
        **{
            **row,
            "state": CardState(row["state"]),
            "expires_on": date.fromisoformat(row["expires_on"]),
            "issued_at": _utc(row["issued_at"]),
            "collected_at": _utc(row["collected_at"]) if row.get("collected_at") else None,
        }
    )


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def load(tx: Transaction, student_no: str) -> CardHolder | None:
    doc = await tx.db[CARD_HOLDERS].find_one({"_id": student_no}, session=tx.session)
    return from_document(doc) if doc else None


async def load_for_change(tx: Transaction, student_no: str) -> tuple[CardHolder, Document | None]:
    """The holder (a new one if none is stored) and its stored state (None when
    none is stored), to tell afterwards whether a change left anything to write."""
    holder = await load(tx, student_no)
    if holder is None:
        return CardHolder(student_no=student_no), None
    return holder, state_of(holder)


async def save(tx: Transaction, holder: CardHolder, now: datetime) -> None:
    doc = to_document(holder, now)
    await tx.db[CARD_HOLDERS].update_one(
        {"_id": holder.student_no},
        {"$set": {k: v for k, v in doc.items() if k != "_id"}, "$setOnInsert": {"created_at": now}},
        upsert=True,
        session=tx.session,
    )
