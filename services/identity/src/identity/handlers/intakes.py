"""Keeping the intake calendar identity needs for invitation e-mails."""

from __future__ import annotations

from opr_shared.events.catalogue import IntakeScheduled
from opr_shared.events.envelope import Envelope
from opr_shared.store.mongo import Transaction

from identity.store import INTAKES


async def on_intake_scheduled(tx: Transaction, envelope: Envelope, event: IntakeScheduled) -> None:
    """Idempotency key: the event id (guard); the write is an upsert by year, so a
    replay sets the same values. Side effects: none beyond the intakes row."""
    await tx.db[INTAKES].update_one(
        {"_id": event.intake_year},
        {
            "$set": {
                "registration_deadline": event.registration_deadline,
                "term_start": event.term_start.isoformat(),
                "age_cutoff": event.age_cutoff.isoformat(),
                "updated_at": envelope.occurred_at,
            }
        },
        upsert=True,
        session=tx.session,
    )
