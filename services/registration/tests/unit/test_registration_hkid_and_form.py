"""HKID numbers and what a form submission needs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from registration.domain.form import FormFields, effective_form, submission_problems
from registration.domain.hkid import InvalidHkid, check_digit, normalise_hkid

PREFILL = {
    "surname": "Chan",
    "given_names": "Tai Man",
    "chinese_name": "陳大文",
    "date_of_birth": "2008-03-01",
    "personal_email": "tm@example.com",
    "mobile": "+85291234567",
}
COMPLETE = {
    "gender": "male",
    "nationality": "chn",
    "residency": "hk_permanent",
    "hkid_number": "a123456(3)",
    "correspondence_address": {"lines": ["1 Clear Water Bay Road"], "country_or_region": "HK"},
    "emergency_contact": {"name": "Chan Siu Ming", "relationship": "Father", "phone": "61234567"},
    "declaration": True,
}


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("A123456(3)", "A123456(3)"),
        ("a1234563", "A123456(3)"),
        (" A 123456 (3) ", "A123456(3)"),
        ("C668668(9)", "C668668(9)"),
        ("AB987654(3)", "AB987654(3)"),
    ],
)
def test_valid_hkid_numbers_are_normalised(raw: str, normalised: str) -> None:
    assert normalise_hkid(raw) == normalised


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("A123456(4)", "check digit"),
        ("A12345(3)", "one or two letters"),
        ("ABC123456(3)", "one or two letters"),
        ("1234567(3)", "one or two letters"),
        ("", "one or two letters"),
    ],
)
def test_invalid_hkid_numbers_are_refused_with_the_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidHkid, match=reason):
        normalise_hkid(raw)


def test_check_digit_ten_is_written_a() -> None:
    digits = next(f"{n:06d}" for n in range(1000) if check_digit("B", f"{n:06d}") == "A")
    assert normalise_hkid(f"B{digits}(A)") == f"B{digits}(A)"


def test_a_draft_field_in_the_wrong_format_is_refused() -> None:
    with pytest.raises(ValidationError, match="check digit"):
        FormFields.model_validate({"hkid_number": "A123456(4)"})
    with pytest.raises(ValidationError, match="travel document is one of"):
        FormFields.model_validate({"travel_document_type": "tuition_receipt"})
    with pytest.raises(ValidationError):
        FormFields.model_validate({"favourite_colour": "blue"})


def _form(**changes: object) -> dict[str, object]:
    draft = FormFields.model_validate(COMPLETE | changes).model_dump(
        mode="json", exclude_unset=True
    )
    return effective_form(PREFILL, draft)


def test_a_complete_form_has_no_problems() -> None:
    form = _form()
    assert submission_problems(form, PREFILL) == []
    assert form["hkid_number"] == "A123456(3)"
    assert form["nationality"] == "CHN"
    assert form["surname"] == "Chan"  # prefilled


def test_missing_fields_and_declaration_are_named() -> None:
    problems = submission_problems(effective_form(PREFILL, {}), PREFILL)
    fields = {p.field for p in problems}
    assert {"gender", "nationality", "residency", "declaration"} <= fields
    assert "surname" not in fields


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"hkid_number": None}, "hkid_number"),
        ({"residency": "hk_non_permanent"}, "travel_document_number"),
        ({"residency": "non_local", "hkid_number": None}, "travel_document_type"),
        ({"declaration": False}, "declaration"),
        ({"surname": "Chen"}, "particulars_changed"),
        ({"date_of_birth": "2008-03-02"}, "particulars_changed"),
        ({"surname": "Chen", "particulars_changed": True}, "change_reason"),
    ],
)
def test_each_rule_names_its_field(changes: dict[str, object], field: str) -> None:
    problems = submission_problems(_form(**changes), PREFILL)
    assert field in {p.field for p in problems}


def test_names_compare_case_and_space_insensitively() -> None:
    assert submission_problems(_form(surname="  CHAN ", given_names="tai  man"), PREFILL) == []


def test_corrected_particulars_with_a_reason_are_accepted() -> None:
    form = _form(surname="Chen", particulars_changed=True, change_reason="Name changed by deed")
    assert submission_problems(form, PREFILL) == []
