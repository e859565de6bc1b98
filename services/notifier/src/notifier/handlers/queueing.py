"""Turning a milestone into a notification: queue it, render it when the contact is known."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opr_shared.store.mongo import Transaction

from notifier.domain.messages import (
    KINDS,
    SHOW_INTAKE_DATES,
    House,
    Kind,
    can_render,
    compose,
    recipients,
)
from notifier.domain.notification import new_notification, rendered
from notifier.domain.templates import render
from notifier.store import CONTACTS, INTAKES, NOTIFICATIONS


@dataclass(frozen=True)
class Known:
    """The student's contact as this transaction already read or wrote it (None:
    there is none), so that it is not read again."""

    contact: dict[str, Any] | None


async def contact_of(
    tx: Transaction, student_no: str, known: Known | None = None
) -> dict[str, Any] | None:
    if known is not None:
        return known.contact
    found: dict[str, Any] | None = await tx.db[CONTACTS].find_one(
        {"_id": student_no}, session=tx.session
    )
    return found


async def intake_of(
    tx: Transaction, kind: Kind, contact: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The intake the student belongs to, for the messages that show its dates."""
    if kind not in SHOW_INTAKE_DATES or not contact or contact.get("intake_year") is None:
        return None
    found: dict[str, Any] | None = await tx.db[INTAKES].find_one(
        {"_id": contact["intake_year"]}, session=tx.session
    )
    return found


async def _render_fields(
    tx: Transaction,
    doc: dict[str, Any],
    kind: Kind,
    contact: dict[str, Any] | None,
    house: House,
) -> dict[str, Any] | None:
    """The fields that make ``doc`` sendable, or None while its contact is unknown."""
    facts, given = doc.get("facts") or {}, doc.get("given_addresses") or {}
    to = recipients(kind, given, contact)
    if not to or not can_render(kind, facts, contact):
        return None
    context = compose(kind, facts, contact, await intake_of(tx, kind, contact), house)
    return rendered(doc, render(kind.template, context), to, datetime.now(UTC))


async def queue(
    tx: Transaction,
    *,
    kind: Kind,
    student_no: str,
    cause_id: uuid.UUID,
    facts: dict[str, Any],
    given: dict[str, str | None],
    house: House,
    known: Known | None = None,
    look_first: bool = True,
) -> bool:
    """Queue one notification of ``kind`` caused by ``cause_id``; False if it exists already.

    Rendered now if the student's contact is known, else kept as ``awaiting_contact``
    and released by :func:`release_parked` when it arrives. ``known``: the contact
    as the transaction has it already.

    ``look_first=False`` is for a transaction that cannot run twice for the same
    cause (a consumed event's, whose processed mark is written with it): the
    notification is inserted without first looking for one with its dedupe key,
    a query on every message for a case that cannot arise. The unique index on
    the key still refuses a second copy, failing the transaction instead of
    answering False.
    """
    doc = new_notification(
        template=kind.template,
        student_no=student_no,
        cause_event_id=cause_id,
        facts=facts,
        given_addresses=given,
        at=datetime.now(UTC),
    )
    if look_first and await tx.db[NOTIFICATIONS].find_one(
        {"dedupe_key": doc["dedupe_key"]}, {"_id": 1}, session=tx.session
    ):
        return False
    fields = await _render_fields(tx, doc, kind, await contact_of(tx, student_no, known), house)
    if fields is not None:
        doc.update(fields)
        doc.pop("facts")
        doc.pop("given_addresses")
    await tx.db[NOTIFICATIONS].insert_one(doc, session=tx.session)
    return True


async def release_parked(
    tx: Transaction, student_no: str, house: House, known: Known | None = None
) -> int:
    """Render and queue for delivery what waited for this student's contact."""
    contact = await contact_of(tx, student_no, known)
    parked = await (
        tx.db[NOTIFICATIONS]
        .find({"student_no": student_no, "status": "awaiting_contact"}, session=tx.session)
        .to_list()
    )
    released = 0
    for doc in parked:
        fields = await _render_fields(tx, doc, KINDS[doc["template"]], contact, house)
        if fields is None:
            continue
        await tx.db[NOTIFICATIONS].update_one(
            {"_id": doc["_id"], "status": "awaiting_contact"},
            {
                "$set": fields,
                "$unset": {"facts": "", "given_addresses": ""},
                "$push": {"log": {"at": fields["rendered_at"], "event": "contact_known"}},
            },
            session=tx.session,
        )
        released += 1
    return released
