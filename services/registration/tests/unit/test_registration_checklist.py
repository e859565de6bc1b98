"""The checklist for every residency x age x route, and what else adds items."""

from __future__ import annotations

from datetime import date

import pytest
from opr_shared.events.catalogue import AdmissionRoute, DocumentType, Residency, StudyLevel
from registration.domain.checklist import (
    Profile,
    age_on,
    is_under_18,
    required_documents,
    requirements,
)

J, N = AdmissionRoute.JUPAS, AdmissionRoute.NON_JUPAS
P, NP, NL = Residency.HK_PERMANENT, Residency.HK_NON_PERMANENT, Residency.NON_LOCAL
BASE = ["university_account", "registration_form"]

# residency, under 18, route -> items (in order), besides account, form and photo
TABLE = [
    (P, False, J, ["hk_permanent_id_card"]),
    (P, True, J, ["hk_permanent_id_card", "parent_consent_form"]),
    (P, False, N, ["hk_permanent_id_card", "tuition_receipt"]),
    (P, True, N, ["hk_permanent_id_card", "tuition_receipt", "parent_consent_form"]),
    (NP, False, J, ["hk_id_card", "travel_document"]),
    (NP, True, J, ["hk_id_card", "travel_document", "parent_consent_form"]),
    (NP, False, N, ["hk_id_card", "travel_document", "tuition_receipt"]),
    (NP, True, N, ["hk_id_card", "travel_document", "tuition_receipt", "parent_consent_form"]),
    # Non-local students enter through non-JUPAS routes; a JUPAS one gets the same list.
    (NL, False, J, ["travel_document", "student_visa"]),
    (NL, True, J, ["travel_document", "student_visa", "parent_consent_form"]),
    (NL, False, N, ["travel_document", "student_visa"]),
    (NL, True, N, ["travel_document", "student_visa", "parent_consent_form"]),
]

COMPULSORY = {
    "university_account": True,
    "registration_form": True,
    "identity_documents": True,
    "hk_permanent_id_card": True,
    "hk_id_card": True,
    "travel_document": True,
    "supporting_document": True,
    "tuition_receipt": True,
    "dependant_visa": False,
    "student_visa": False,
    "parent_consent_form": False,
    "photo": False,
}


@pytest.mark.parametrize(("residency", "under_18", "route", "items"), TABLE)
def test_checklist_by_residency_age_and_route(
    residency: Residency, under_18: bool, route: AdmissionRoute, items: list[str]
) -> None:
    reqs = requirements(Profile(residency=residency, under_18=under_18, route=route))
    assert [r.item for r in reqs] == [*BASE, *items, "photo"]
    assert {r.item: r.compulsory for r in reqs} == {r.item: COMPULSORY[r.item] for r in reqs}


def test_the_table_covers_every_combination() -> None:
    combos = {(r, u, route) for r, u, route, _ in TABLE}
    assert len(combos) == len(list(Residency)) * 2 * len(list(AdmissionRoute))


def test_a_permanent_resident_needs_no_passport() -> None:
    reqs = requirements(Profile(residency=P, under_18=False, route=J))
    accepted = {t for r in reqs for t in r.accepts}
    assert accepted == {DocumentType.HK_PERMANENT_ID_CARD}


def test_travel_document_accepts_any_of_the_three() -> None:
    reqs = requirements(Profile(residency=NP, under_18=False, route=J))
    travel = next(r for r in reqs if r.item == "travel_document")
    assert set(travel.accepts) == {
        DocumentType.PASSPORT,
        DocumentType.DOCUMENT_OF_IDENTITY,
        DocumentType.EXIT_ENTRY_PERMIT,
    }


def test_dependant_visa_only_when_it_applies() -> None:
    with_visa = requirements(Profile(residency=NP, under_18=False, route=J, dependant_visa=True))
    assert "dependant_visa" in [r.item for r in with_visa]


def test_corrected_particulars_need_a_supporting_document() -> None:
    reqs = requirements(Profile(residency=P, under_18=False, route=J, particulars_changed=True))
    supporting = next(r for r in reqs if r.item == "supporting_document")
    assert set(supporting.accepts) == {DocumentType.DEED_POLL, DocumentType.SUPPORTING_DOCUMENT}
    assert supporting.compulsory


def test_postgraduates_upload_no_tuition_receipt() -> None:
    reqs = requirements(
        Profile(residency=P, under_18=False, route=N, study_level=StudyLevel.POSTGRADUATE)
    )
    assert "tuition_receipt" not in [r.item for r in reqs]


def test_without_residency_a_placeholder_stands_for_the_identity_documents() -> None:
    reqs = requirements(Profile(residency=None, under_18=False, route=N))
    assert [r.item for r in reqs] == [*BASE, "identity_documents", "photo"]


@pytest.mark.parametrize(
    ("born", "under_18"),
    [
        (date(2009, 9, 1), False),  # 18 on the cut-off day itself
        (date(2009, 9, 2), True),
        (date(2010, 2, 28), True),
        (date(2005, 1, 1), False),
    ],
)
def test_under_18_is_judged_on_the_cut_off(born: date, under_18: bool) -> None:
    assert is_under_18(born, date(2027, 9, 1)) is under_18


def test_age_on_a_leap_day_birthday() -> None:
    assert age_on(date(2008, 2, 29), date(2026, 2, 28)) == 17
    assert age_on(date(2008, 2, 29), date(2026, 3, 1)) == 18


def test_required_documents_name_the_declared_travel_document() -> None:
    reqs = requirements(Profile(residency=NP, under_18=True, route=N, particulars_changed=True))
    assert required_documents(reqs, DocumentType.EXIT_ENTRY_PERMIT) == [
        "hk_id_card",
        "exit_entry_permit",
        "supporting_document",
        "tuition_receipt",
        "parent_consent_form",
    ]
