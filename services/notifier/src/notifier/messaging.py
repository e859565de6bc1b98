"""Everything notifier consumes, in one table."""

from __future__ import annotations

from opr_shared.events.catalogue import (
    AccountActivated,
    CardReadyForCollection,
    DocumentRejected,
    DocumentUploaded,
    DocumentVerified,
    FormSubmitted,
    IntakeScheduled,
    InvitationIssued,
    PhotoApproved,
    PhotoRejected,
    PhotoSubmitted,
    RegistrationCompleted,
    RegistrationIncomplete,
    RegistrationStatusChanged,
    RegistrationWithdrawn,
    StudentAdmitted,
    StudentParticularsUpdated,
)
from opr_shared.messaging.consumer import Subscriptions

from notifier.domain.messages import House
from notifier.handlers.milestones import Milestones


def subscriptions(house: House) -> Subscriptions:
    h = Milestones(house)
    subs = Subscriptions("notifier")
    # Who the student is, and the intake calendar.
    subs.add(StudentAdmitted, h.on_student_admitted)
    subs.add(StudentParticularsUpdated, h.on_student_particulars_updated)
    subs.add(AccountActivated, h.on_account_activated)
    subs.add(IntakeScheduled, h.on_intake_scheduled)
    # Checklist progress, for deadline reminders.
    subs.add(RegistrationStatusChanged, h.on_registration_status_changed)
    subs.add(DocumentUploaded, h.on_document_uploaded)
    subs.add(DocumentVerified, h.on_document_verified)
    subs.add(PhotoSubmitted, h.on_photo_submitted)
    subs.add(PhotoApproved, h.on_photo_approved)
    # Milestones, one message each.
    subs.add(InvitationIssued, h.on_invitation_issued)
    subs.add(FormSubmitted, h.on_form_submitted)
    subs.add(DocumentRejected, h.on_document_rejected)
    subs.add(PhotoRejected, h.on_photo_rejected)
    subs.add(RegistrationCompleted, h.on_registration_completed)
    subs.add(RegistrationIncomplete, h.on_registration_incomplete)
    subs.add(RegistrationWithdrawn, h.on_registration_withdrawn)
    subs.add(CardReadyForCollection, h.on_card_ready_for_collection)
    return subs
