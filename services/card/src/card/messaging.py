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

from card.handlers.eligibility import (
    on_account_activated,
    on_registration_completed,
    on_registration_incomplete,
    on_registration_status_changed,
    on_registration_withdrawn,
    on_student_admitted,
    on_student_particulars_updated,
    photo_approved_handler,
)
from card.store.files import Bucket, LateBucket


def subscriptions(bucket: Bucket | None = None) -> Subscriptions:
    """Card's subscriptions; ``bucket`` keeps approved photos (the composition root
    binds the real one; without it, the table can be listed but a photo not stored)."""
    bucket = bucket or LateBucket()
    subs = Subscriptions("card")
    subs.add(StudentAdmitted, on_student_admitted)
    subs.add(StudentParticularsUpdated, on_student_particulars_updated)
    subs.add(RegistrationCompleted, on_registration_completed)
    subs.add(AccountActivated, on_account_activated)
    subs.add(RegistrationStatusChanged, on_registration_status_changed)
    subs.add(RegistrationIncomplete, on_registration_incomplete)
    subs.add(RegistrationWithdrawn, on_registration_withdrawn)
    subs.add(PhotoApproved, photo_approved_handler(bucket))
    return subs
