"""Everything card consumes, in one table."""

from __future__ import annotations

from opr_shared.events.catalogue import StudentAdmitted
from opr_shared.messaging.consumer import Subscriptions

from card.handlers.admissions import on_student_admitted


def subscriptions() -> Subscriptions:
    subs = Subscriptions("card")
    subs.add(StudentAdmitted, on_student_admitted)
    return subs
