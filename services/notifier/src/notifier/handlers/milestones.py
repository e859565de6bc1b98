"""One notification per milestone event."""

from __future__ import annotations

from typing import Any

from opr_shared.events.catalogue import InvitationIssued
from opr_shared.events.envelope import Envelope
from opr_shared.store.mongo import Transaction

from notifier.domain.notification import dedupe_key, new_notification
from notifier.store import NOTIFICATIONS


async def _queue(
    tx: Transaction,
    envelope: Envelope,
    *,
    template: str,
    recipients: list[str],
    context: dict[str, Any],
) -> None:
    key = dedupe_key(envelope.event_id, template, recipients)
    if await tx.db[NOTIFICATIONS].find_one({"dedupe_key": key}, {"_id": 1}, session=tx.session):
        return
    doc = new_notification(
        template=template,
        student_no=envelope.subject,
        recipients=recipients,
        cause_event_id=envelope.event_id,
        context=context,
        at=envelope.occurred_at,
    )
    await tx.db[NOTIFICATIONS].insert_one(doc, session=tx.session)


async def on_invitation_issued(
    tx: Transaction, envelope: Envelope, event: InvitationIssued
) -> None:
    """Idempotency key: (event id, template, recipients). Side effects: queues the
    invitation e-mail to the personal address; delivery happens after commit."""
    await _queue(
        tx,
        envelope,
        template="invitation",
        recipients=[event.personal_email],
        context={
            "surname": event.surname,
            "given_names": event.given_names,
            "chinese_name": event.chinese_name,
            "activation_url": event.activation_url,
            "expires_at": event.activation_expires_at.strftime("%d/%m/%Y %H:%M UTC"),
            "registration_deadline": (
                event.registration_deadline.strftime("%d/%m/%Y %H:%M UTC")
                if event.registration_deadline
                else None
            ),
            "term_start": event.term_start.strftime("%d/%m/%Y") if event.term_start else None,
        },
    )
