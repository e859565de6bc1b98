"""A newly admitted student's registration record."""

from __future__ import annotations

from datetime import UTC, date, datetime

from opr_shared.events.catalogue import AdmissionRoute, StudentAdmitted, StudentParticularsUpdated
from registration.domain.registration import Status, corrected_particulars, new_registration

ADMITTED = StudentAdmitted(
    student_no="20261234",
    jupas_app_no="12345678",
    surname="Chan",
    given_names="Tai Man",
    chinese_name="陳大文",
    date_of_birth=date(2008, 3, 1),
    personal_email="tm@example.com",
    mobile="+85291234567",
    programme_code="BSC-CS",
    programme_name="Computer Science",
    intake_year=2026,
    admission_route=AdmissionRoute.JUPAS,
)


def test_new_registration_is_in_progress_and_prefilled() -> None:
    at = datetime(2026, 7, 1, tzinfo=UTC)
    record = new_registration(ADMITTED, at)
    assert record["_id"] == "20261234"
    assert record["status"] == Status.IN_PROGRESS
    assert record["prefill"]["surname"] == "Chan"
    assert record["prefill"]["date_of_birth"] == "2008-03-01"
    assert record["record"]["admission_route"] == "JUPAS"
    assert record["form"] is None
    assert record["history"] == [{"at": at, "status": "in_progress", "cause": "StudentAdmitted"}]


def test_a_corrected_roster_row_updates_prefill_and_record() -> None:
    data = ADMITTED.model_dump()
    data.update(
        surname="Chen", programme_code="BENG-CE", changed_fields=["surname", "programme_code"]
    )
    updates = corrected_particulars(StudentParticularsUpdated.model_validate(data))
    assert updates["prefill.surname"] == "Chen"
    assert updates["record.programme_code"] == "BENG-CE"
