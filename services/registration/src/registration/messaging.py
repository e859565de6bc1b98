"""Everything registration consumes, in one table."""

from __future__ import annotations

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
    StudentAdmitted,
    StudentParticularsUpdated,
)
from opr_shared.messaging.consumer import Subscriptions

from registration.handlers import progress
from registration.handlers.admissions import on_student_admitted, on_student_particulars_updated


def subscriptions() -> Subscriptions:
    subs = Subscriptions("registration")
    # identity
    subs.add(StudentAdmitted, on_student_admitted)
    subs.add(StudentParticularsUpdated, on_student_particulars_updated)
    subs.add(AccountActivated, progress.on_account_activated)
    # documents
    subs.add(DocumentUploaded, progress.on_document_uploaded)
    subs.add(DocumentVerified, progress.on_document_verified)
    subs.add(DocumentRejected, progress.on_document_rejected)
    subs.add(PhotoSubmitted, progress.on_photo_submitted)
    subs.add(PhotoApproved, progress.on_photo_approved)
    subs.add(PhotoRejected, progress.on_photo_rejected)
    # card
    subs.add(CardIssued, progress.on_card_issued)
    subs.add(CardReadyForCollection, progress.on_card_ready_for_collection)
    subs.add(CardCollected, progress.on_card_collected)
    return subs
