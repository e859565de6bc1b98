"""Everything registration consumes, in one table."""

from __future__ import annotations

from opr_shared.events.catalogue import StudentAdmitted, StudentParticularsUpdated
from opr_shared.messaging.consumer import Subscriptions

from registration.handlers.admissions import on_student_admitted, on_student_particulars_updated


def subscriptions() -> Subscriptions:
    subs = Subscriptions("registration")
    subs.add(StudentAdmitted, on_student_admitted)
    subs.add(StudentParticularsUpdated, on_student_particulars_updated)
    return subs
