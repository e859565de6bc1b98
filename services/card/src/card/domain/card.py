"""The card record of one student, from admission to collection."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from opr_shared.events.catalogue import StudentAdmitted


class CardStatus(StrEnum):
    AWAITING_ELIGIBILITY = "awaiting_eligibility"
    ISSUED = "issued"
    COLLECTED = "collected"


def card_holder(event: StudentAdmitted, at: datetime) -> dict[str, Any]:
    """What the card office knows of a newly admitted student: no card yet."""
    return {
        "_id": event.student_no,
        "surname": event.surname,
        "given_names": event.given_names,
        "chinese_name": event.chinese_name,
        "programme_code": event.programme_code,
        "programme_name": event.programme_name,
        "intake_year": event.intake_year,
        "status": CardStatus.AWAITING_ELIGIBILITY.value,
        "registration_completed": False,
        "photo_approved": False,
        "created_at": at,
    }
