"""Everything documents consumes, in one table."""

from __future__ import annotations

from opr_shared.events.catalogue import FormSubmitted, StudentAdmitted, StudentParticularsUpdated
from opr_shared.messaging.consumer import Subscriptions

from documents.handlers.admissions import (
    on_form_submitted,
    on_student_admitted,
    on_student_particulars_updated,
)


def subscriptions() -> Subscriptions:
    subs = Subscriptions("documents")
    subs.add(StudentAdmitted, on_student_admitted)
    subs.add(StudentParticularsUpdated, on_student_particulars_updated)
    subs.add(FormSubmitted, on_form_submitted)
    return subs
