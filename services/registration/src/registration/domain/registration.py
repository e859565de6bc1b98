"""The registration record of one admitted student."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from opr_shared.events.catalogue import StudentAdmitted, StudentParticularsUpdated


class Status(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"
    WITHDRAWN = "withdrawn"


PREFILLED = (
    "surname",
    "given_names",
    "chinese_name",
    "date_of_birth",
    "personal_email",
    "mobile",
)
RECORD = (
    "jupas_app_no",
    "programme_code",
    "programme_name",
    "intake_year",
    "admission_route",
    "study_level",
)


def new_registration(event: StudentAdmitted, at: datetime) -> dict[str, Any]:
    """The record a newly admitted student starts with: In Progress, form prefilled."""
    data = event.model_dump(mode="json")
    return {
        "_id": event.student_no,
        "status": Status.IN_PROGRESS.value,
        "record": {k: data[k] for k in RECORD},
        "prefill": {k: data[k] for k in PREFILLED},
        "form": None,
        "submitted_at": None,
        "created_at": at,
        "history": [{"at": at, "status": Status.IN_PROGRESS.value, "cause": "StudentAdmitted"}],
    }


def corrected_particulars(event: StudentParticularsUpdated) -> dict[str, Any]:
    """Field updates ($set) for a corrected roster row."""
    data = event.model_dump(mode="json")
    updates = {f"record.{k}": data[k] for k in RECORD}
    updates.update({f"prefill.{k}": data[k] for k in PREFILLED})
    return updates
