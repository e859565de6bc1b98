"""The checklist follows identity, documents and card.

Each of these events may arrive before the student's admission, before the form
is submitted, or after a newer fact about the same item: the registration keeps
the facts keyed by document id/version (or photo id) and re-derives the checklist
and status, so any order gives the same result. A record that does not exist yet
is created as a stub holding the facts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from opr_shared.events.catalogue import (
    AccountActivated,
    CardCollected,
    CardIssued,
    CardReadyForCollection,
    DocumentRejected,
    DocumentUploaded,
    DocumentVerified,
    PhotoApproved,
    PhotoRejected,
    PhotoSubmitted,
)
from opr_shared.events.envelope import Envelope, EventPayload
from opr_shared.store.mongo import Transaction

from registration.domain.intake import Intake
from registration.domain.registration import Cause, Registration
from registration.store.repository import intake_for, load_or_stub, publish_all, save

Change = Callable[[Registration, Intake, datetime, Cause], list[EventPayload]]


async def _progress(tx: Transaction, envelope: Envelope, student_no: str, change: Change) -> None:
    at = datetime.now(UTC)
    registration = await load_or_stub(tx, student_no, at)
    intake = await intake_for(tx, registration.intake_year, at)
    events = change(registration, intake, at, Cause(envelope.event_type, str(envelope.event_id)))
    await save(tx, registration)
    publish_all(tx, student_no, events)


async def on_account_activated(
    tx: Transaction, envelope: Envelope, event: AccountActivated
) -> None:
    """Idempotency key: event id (guard); the account facts are absolute values.
    Side effects: 'university account' item done, university email kept for the
    outcome emails; may complete the registration (RegistrationStatusChanged +
    RegistrationCompleted)."""
    await _progress(
        tx, envelope, event.student_no, lambda r, i, at, c: r.account_activated(event, i, at, c)
    )


async def on_document_uploaded(
    tx: Transaction, envelope: Envelope, event: DocumentUploaded
) -> None:
    """Idempotency key: event id (guard); facts keyed by (doc_type, version).
    Side effects: the version is recorded as uploaded; the item shows the latest version."""
    await _progress(
        tx, envelope, event.student_no, lambda r, i, at, c: r.document_uploaded(event, i, at, c)
    )


async def on_document_verified(
    tx: Transaction, envelope: Envelope, event: DocumentVerified
) -> None:
    """Idempotency key: event id (guard); facts keyed by (doc_type, version), the
    first verification stands. Side effects: the item is verified (unless the
    document expires on or before 1 September of the intake year); may complete
    the registration (RegistrationStatusChanged + RegistrationCompleted)."""
    await _progress(
        tx, envelope, event.student_no, lambda r, i, at, c: r.document_verified(event, i, at, c)
    )


async def on_document_rejected(
    tx: Transaction, envelope: Envelope, event: DocumentRejected
) -> None:
    """Idempotency key: event id (guard); facts keyed by (doc_type, version), the
    latest rejection gives the reason. Side effects: the item is rejected with the
    reason, unless that version or another was verified."""
    await _progress(
        tx, envelope, event.student_no, lambda r, i, at, c: r.document_rejected(event, i, at, c)
    )


async def on_photo_submitted(tx: Transaction, envelope: Envelope, event: PhotoSubmitted) -> None:
    """Idempotency key: event id (guard); facts keyed by photo id.
    Side effects: the photo item is 'uploaded' (awaiting the card office)."""
    await _progress(
        tx, envelope, event.student_no, lambda r, i, at, c: r.photo_submitted(event, i, at, c)
    )


async def on_photo_approved(tx: Transaction, envelope: Envelope, event: PhotoApproved) -> None:
    """Idempotency key: event id (guard); facts keyed by photo id (approval is final).
    Side effects: the photo item is verified."""
    await _progress(
        tx, envelope, event.student_no, lambda r, i, at, c: r.photo_approved(event, i, at, c)
    )


async def on_photo_rejected(tx: Transaction, envelope: Envelope, event: PhotoRejected) -> None:
    """Idempotency key: event id (guard); facts keyed by photo id.
    Side effects: the photo item is rejected with the reasons, unless a photo was approved."""
    await _progress(
        tx, envelope, event.student_no, lambda r, i, at, c: r.photo_rejected(event, i, at, c)
    )


async def _card(
    tx: Transaction,
    envelope: Envelope,
    event: CardIssued | CardReadyForCollection | CardCollected,
) -> None:
    # No status follows from the card office's progress, so the intake's
    # calendar is not read.
    at = datetime.now(UTC)
    registration = await load_or_stub(tx, event.student_no, at)
    registration.card_progress(event, at, Cause(envelope.event_type, str(envelope.event_id)))
    await save(tx, registration)


async def on_card_issued(tx: Transaction, envelope: Envelope, event: CardIssued) -> None:
    """Idempotency key: event id (guard); keyed by card number.
    Side effects: the card is shown in the student's history; no status change."""
    await _card(tx, envelope, event)


async def on_card_ready_for_collection(
    tx: Transaction, envelope: Envelope, event: CardReadyForCollection
) -> None:
    """Idempotency key: event id (guard); keyed by card number.
    Side effects: the collection slot is shown in the history; no status change."""
    await _card(tx, envelope, event)


async def on_card_collected(tx: Transaction, envelope: Envelope, event: CardCollected) -> None:
    """Idempotency key: event id (guard); keyed by card number.
    Side effects: the collection is shown in the history; no status change."""
    await _card(tx, envelope, event)
