"""Everything card consumes, in one table."""

from __future__ import annotations

from opr_shared.events.catalogue import (
    AccountActivated,
    PhotoApproved,
    RegistrationCompleted,
    RegistrationIncomplete,
    RegistrationStatusChanged,
    RegistrationWithdrawn,
    StudentAdmitted,
    StudentParticularsUpdated,
)
from opr_shared.messaging.consumer import Subscriptions

from card.handlers.eligibility import Eligibility
from card.handlers.issuing import Issuing
from card.store.files import Bucket, LateBucket
from card.store.numbers import CardNumbers


def subscriptions(bucket: Bucket | None = None, issuing: Issuing | None = None) -> Subscriptions:
    """Card's subscriptions; ``bucket`` keeps approved photos (the composition root
    binds the real one; without it, the table can be listed but a photo not stored),
    ``issuing`` issues the cards (by default without waking a slot-offer sweep)."""
    handlers = Eligibility(issuing or Issuing(CardNumbers()), bucket or LateBucket())
    subs = Subscriptions("card")
    subs.add(StudentAdmitted, handlers.on_student_admitted)
    subs.add(StudentParticularsUpdated, handlers.on_student_particulars_updated)
    subs.add(RegistrationCompleted, handlers.on_registration_completed)
    subs.add(AccountActivated, handlers.on_account_activated)
    subs.add(RegistrationStatusChanged, handlers.on_registration_status_changed)
    subs.add(RegistrationIncomplete, handlers.on_registration_incomplete)
    subs.add(RegistrationWithdrawn, handlers.on_registration_withdrawn)
    subs.add(PhotoApproved, handlers.on_photo_approved)
    return subs
