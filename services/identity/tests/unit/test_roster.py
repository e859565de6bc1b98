"""Roster rows: validation row by row, and reconciliation with the stored record."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from identity.domain.invitations import activation_url, hash_token, new_invitation
from identity.domain.roster import AdmissionRow, reconcile, validate_rows


def row(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "student_no": "20261234",
        "jupas_app_no": "12345678",
        "surname": "Chan",
        "given_names": "Tai Man",
        "chinese_name": "陳大文",
        "date_of_birth": "01/03/2008",
        "personal_email": "TM.Chan@Example.com",
        "mobile": "+852 9123 4567",
        "programme_code": "BSC-CS",
        "programme_name": "BSc in Computer Science",
        "intake_year": 2026,
        "admission_route": "JUPAS",
    }
    base.update(overrides)
    return base


def test_a_good_row_is_normalised() -> None:
    good, errors = validate_rows([row()])
    assert errors == []
    [(index, parsed)] = good
    assert index == 1
    assert parsed.date_of_birth == date(2008, 3, 1)
    assert parsed.personal_email == "tm.chan@example.com"


def test_both_date_formats_are_accepted() -> None:
    good, errors = validate_rows([row(date_of_birth="2008-03-01")])
    assert errors == []
    assert good[0][1].date_of_birth == date(2008, 3, 1)


def test_bad_rows_are_reported_with_their_position_and_field_and_good_rows_go_on() -> None:
    rows = [
        row(student_no="20260001"),
        row(student_no="123", jupas_app_no="11111111"),
        row(student_no="20260003", date_of_birth="31/02/2008", jupas_app_no="22222222"),
        row(student_no="20260004", personal_email="not-an-email", jupas_app_no="33333333"),
        "not an object",
        row(student_no="20260001", jupas_app_no="44444444"),
    ]
    good, errors = validate_rows(rows)
    assert [i for i, _ in good] == [1]
    assert {(e.row, e.field) for e in errors} == {
        (2, "student_no"),
        (3, "date_of_birth"),
        (4, "personal_email"),
        (5, ""),
        (6, "student_no"),
    }
    assert next(e for e in errors if e.row == 6).message == "duplicate of row 1"


def test_a_jupas_entrant_needs_an_application_number() -> None:
    good, errors = validate_rows([row(jupas_app_no="")])
    assert good == []
    assert "JUPAS application number" in errors[0].message
    good, errors = validate_rows([row(jupas_app_no="", admission_route="NON_JUPAS")])
    assert errors == []


def test_unknown_columns_are_refused() -> None:
    _, errors = validate_rows([row(hkid="A1234563")])
    assert errors[0].field == "hkid"


def test_reconcile_new_same_and_corrected() -> None:
    parsed = AdmissionRow.model_validate(row())
    assert reconcile(None, parsed).kind == "created"
    stored = parsed.particulars()
    assert reconcile(stored, parsed).kind == "unchanged"
    corrected = AdmissionRow.model_validate(row(surname="Chen", mobile="+852 9123 0000"))
    change = reconcile(stored, corrected)
    assert change.kind == "updated"
    assert change.changed_fields == ["surname", "mobile"]


def test_invitation_tokens_are_fresh_and_stored_only_hashed() -> None:
    now = datetime(2026, 7, 1, tzinfo=UTC)
    first = new_invitation(0, now, timedelta(days=14))
    second = new_invitation(first.invitation_no, now, timedelta(days=14))
    assert first.token != second.token
    assert first.token_hash == hash_token(first.token) != first.token
    assert second.invitation_no == 2
    assert first.expires_at == now + timedelta(days=14)
    assert activation_url("http://x/", first.token) == f"http://x/activate?token={first.token}"
