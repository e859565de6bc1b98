"""The card office learns of every admitted student."""

from __future__ import annotations

from opr_shared.events.catalogue import StudentAdmitted
from opr_shared.events.envelope import Envelope
from opr_shared.store.mongo import Transaction

from card.domain.card import card_holder
from card.store import CARD_HOLDERS


async def on_student_admitted(tx: Transaction, envelope: Envelope, event: StudentAdmitted) -> None:
    """Idempotency key: event id (guard) and student number (an existing holder is
    kept). Side effects: a card-holder record awaiting eligibility."""
    holders = tx.db[CARD_HOLDERS]
    if await holders.find_one({"_id": event.student_no}, {"_id": 1}, session=tx.session):
        return
    await holders.insert_one(card_holder(event, envelope.occurred_at), session=tx.session)
