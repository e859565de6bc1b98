"""The status machine: every transition, out-of-order and duplicated events, and
the property that any order of the same events ends in the same state."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opr_shared.events.catalogue import (
    AccountActivated,
    AdmissionRoute,
    CardIssued,
    DocumentRejected,
    DocumentType,
    DocumentUploaded,
    DocumentVerified,
    FormSubmitted,
    PhotoApproved,
    PhotoRejected,
    PhotoSubmitted,
    RegistrationCompleted,
    RegistrationIncomplete,
    RegistrationStatusChanged,
    RegistrationWithdrawn,
    StudentAdmitted,
    StudentParticularsUpdated,
    example_payload,
)
from opr_shared.events.envelope import EventPayload
from registration.domain.form import FormFields
from registration.domain.intake import Intake
from registration.domain.registration import (
    AlreadySubmitted,
    Cause,
    FormRefused,
    NotAdmitted,
    Registration,
    Status,
)

NO = "20270001"
T0 = datetime(2027, 7, 20, 1, 0, tzinfo=UTC)
INTAKE = Intake(2027, datetime(2027, 8, 13, 9, 0, tzinfo=UTC), date(2027, 9, 1), date(2027, 9, 1))
T = DocumentType
_PHOTO_EXAMPLE = example_payload(PhotoApproved).model_dump()


def admitted(
    dob: date = date(2005, 10, 2), route: AdmissionRoute = AdmissionRoute.JUPAS
) -> StudentAdmitted:
    return StudentAdmitted(
        student_no=NO,
        jupas_app_no="12345678",
        surname="Chan",
        given_names="Tai Man",
        chinese_name="陳大文",
        date_of_birth=dob,
        personal_email="tm@example.com",
        mobile="+85291234567",
        programme_code="BBA",
        programme_name="Business",
        intake_year=2027,
        admission_route=route,
    )


def activated() -> AccountActivated:
    return AccountActivated(
        student_no=NO,
        university_email="tmchan@connect.example.edu.hk",
        personal_email="tm@example.com",
        activated_at=T0,
    )


def _doc_id(doc_type: DocumentType, version: int) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{NO}/{doc_type}/{version}")


def uploaded(doc_type: DocumentType, version: int = 1) -> DocumentUploaded:
    return DocumentUploaded(
        document_id=_doc_id(doc_type, version),
        student_no=NO,
        doc_type=doc_type,
        version=version,
        content_type="application/pdf",
        size_bytes=1000,
        sha256="0" * 64,
        uploaded_at=T0 + timedelta(minutes=version),
    )


def verified(
    doc_type: DocumentType, version: int = 1, expiry: date | None = None
) -> DocumentVerified:
    return DocumentVerified(
        document_id=_doc_id(doc_type, version),
        student_no=NO,
        doc_type=doc_type,
        version=version,
        expiry_date=expiry,
        verified_by="officer.lam",
        verified_at=T0 + timedelta(hours=version),
    )


def rejected(doc_type: DocumentType, version: int = 1, reason: str = "blurred") -> DocumentRejected:
    return DocumentRejected(
        document_id=_doc_id(doc_type, version),
        student_no=NO,
        doc_type=doc_type,
        version=version,
        reason=reason,
        rejected_by="officer.lam",
        rejected_at=T0 + timedelta(hours=version),
    )


def _photo_id(n: int) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{NO}/photo/{n}")


def photo_submitted(n: int) -> PhotoSubmitted:
    return PhotoSubmitted(
        photo_id=_photo_id(n),
        student_no=NO,
        version=n,
        width=480,
        height=640,
        content_type="image/jpeg",
        size_bytes=5000,
        sha256="1" * 64,
        submitted_at=T0 + timedelta(minutes=n),
    )


def photo_approved(n: int) -> PhotoApproved:
    return PhotoApproved.model_validate(
        _PHOTO_EXAMPLE | {"photo_id": _photo_id(n), "student_no": NO, "approved_at": T0}
    )


def photo_rejected(n: int) -> PhotoRejected:
    return PhotoRejected(
        photo_id=_photo_id(n),
        student_no=NO,
        reasons=["face not centred"],
        rejected_by="card.ho",
        rejected_at=T0 + timedelta(minutes=n, seconds=30),
    )


FORM_BASE: dict[str, Any] = {
    "gender": "male",
    "nationality": "CHN",
    "correspondence_address": {"lines": ["1 Clear Water Bay Road"], "country_or_region": "HK"},
    "emergency_contact": {"name": "Chan Siu Ming", "relationship": "Father", "phone": "61234567"},
    "declaration": True,
}
PERMANENT = FormFields.model_validate(
    FORM_BASE | {"residency": "hk_permanent", "hkid_number": "A123456(3)"}
)
NON_PERMANENT = FormFields.model_validate(
    FORM_BASE
    | {
        "residency": "hk_non_permanent",
        "hkid_number": "A123456(3)",
        "travel_document_type": "passport",
        "travel_document_number": "K1234567",
        "dependant_visa": True,
        "surname": "Chen",
        "particulars_changed": True,
        "change_reason": "Surname changed by deed poll",
    }
)


@dataclass(frozen=True)
class Submit:
    """The student submitting the form (a command, not an event)."""

    fields: FormFields


@dataclass(frozen=True)
class Close:
    """The registry applying the deadline."""


Step = EventPayload | Submit | Close


def deliver(reg: Registration, step: Step, intake: Intake = INTAKE) -> list[EventPayload]:
    at = T0
    cause = Cause(type(step).__name__)
    if isinstance(step, Submit):
        return reg.submit(step.fields, intake, at)
    if isinstance(step, Close):
        return reg.apply_deadline(intake, at)
    if isinstance(step, StudentAdmitted):
        return reg.admit(step, intake, at, cause)
    if isinstance(step, StudentParticularsUpdated):
        return reg.correct_particulars(step, intake, at, cause)
    if isinstance(step, AccountActivated):
        return reg.account_activated(step, intake, at, cause)
    if isinstance(step, DocumentUploaded):
        return reg.document_uploaded(step, intake, at, cause)
    if isinstance(step, DocumentVerified):
        return reg.document_verified(step, intake, at, cause)
    if isinstance(step, DocumentRejected):
        return reg.document_rejected(step, intake, at, cause)
    if isinstance(step, PhotoSubmitted):
        return reg.photo_submitted(step, intake, at, cause)
    if isinstance(step, PhotoApproved):
        return reg.photo_approved(step, intake, at, cause)
    if isinstance(step, PhotoRejected):
        return reg.photo_rejected(step, intake, at, cause)
    raise AssertionError(step)


def run(*steps: Step, intake: Intake = INTAKE) -> tuple[Registration, list[EventPayload]]:
    reg = Registration.stub(NO, T0)
    published: list[EventPayload] = []
    for step in steps:
        published += deliver(reg, step, intake)
    return reg, published


def types(events: list[EventPayload]) -> list[str]:
    return [e.event_type for e in events]


def states(reg: Registration, intake: Intake = INTAKE) -> dict[str, str]:
    return {i.item: i.state.value for i in reg.checklist(intake)}


READY = (admitted(), activated(), Submit(PERMANENT), uploaded(T.HK_PERMANENT_ID_CARD))


# -- transitions ------------------------------------------------------------------


def test_admission_opens_the_registration_in_progress() -> None:
    reg, events = run(admitted())
    assert reg.status is Status.IN_PROGRESS
    assert reg.doc["prefill"]["surname"] == "Chan"
    assert types(events) == ["RegistrationStatusChanged"]
    opened = events[0]
    assert isinstance(opened, RegistrationStatusChanged)
    assert (opened.from_status, opened.to_status, opened.reason) == (
        None,
        "in_progress",
        "registration_opened",
    )
    assert {o.item for o in opened.outstanding} >= {"university_account", "registration_form"}


def test_verifying_the_last_compulsory_item_completes_with_supplementary_outstanding() -> None:
    reg, events = run(*READY, verified(T.HK_PERMANENT_ID_CARD))
    assert reg.status is Status.COMPLETED
    assert types(events)[-2:] == ["RegistrationStatusChanged", "RegistrationCompleted"]
    completed = events[-1]
    assert isinstance(completed, RegistrationCompleted)
    assert completed.university_email == "tmchan@connect.example.edu.hk"
    assert completed.personal_email == "tm@example.com"
    assert [(o.item, o.compulsory, o.due_by) for o in completed.outstanding] == [
        ("photo", False, date(2027, 9, 1))
    ]


@pytest.mark.parametrize("missing", ["admission", "account", "form", "document"])
def test_without_any_compulsory_step_it_stays_in_progress(missing: str) -> None:
    steps: dict[str, list[Step]] = {
        "admission": [admitted(), Submit(PERMANENT)],
        "account": [activated()],
        "form": [Submit(PERMANENT)],
        "document": [uploaded(T.HK_PERMANENT_ID_CARD), verified(T.HK_PERMANENT_ID_CARD)],
    }
    if missing != "admission":
        steps["admission"] = [admitted()]
        steps["form"] = [Submit(PERMANENT)]
    del steps[missing]
    if missing == "admission":
        del steps["form"]
    reg, events = run(*[s for group in steps.values() for s in group])
    assert reg.status in (Status.IN_PROGRESS, None)
    assert "RegistrationCompleted" not in types(events)


def test_deadline_with_a_compulsory_item_missing_withdraws() -> None:
    reg, events = run(admitted(), activated(), Close())
    assert reg.status is Status.WITHDRAWN
    withdrawn = events[-1]
    assert isinstance(withdrawn, RegistrationWithdrawn)
    assert {m.item for m in withdrawn.missing} == {"registration_form", "identity_documents"}
    assert all(m.compulsory for m in withdrawn.missing)


def test_deadline_with_a_compulsory_item_rejected_withdraws() -> None:
    reg, events = run(*READY, rejected(T.HK_PERMANENT_ID_CARD), Close())
    assert reg.status is Status.WITHDRAWN
    withdrawn = events[-1]
    assert isinstance(withdrawn, RegistrationWithdrawn)
    assert [(m.item, m.state) for m in withdrawn.missing] == [("hk_permanent_id_card", "rejected")]


def test_deadline_with_compulsory_items_uploaded_registers_as_incomplete() -> None:
    reg, events = run(*READY, Close())
    assert reg.status is Status.INCOMPLETE
    assert types(events)[-2:] == ["RegistrationStatusChanged", "RegistrationIncomplete"]
    incomplete = events[-1]
    assert isinstance(incomplete, RegistrationIncomplete)
    assert incomplete.follow_up_by == date(2027, 9, 1)
    assert {o.item for o in incomplete.outstanding} == {"hk_permanent_id_card", "photo"}


def test_incomplete_completes_once_the_compulsory_items_are_verified() -> None:
    reg, events = run(*READY, Close(), verified(T.HK_PERMANENT_ID_CARD))
    assert reg.status is Status.COMPLETED
    changed = [e for e in events if isinstance(e, RegistrationStatusChanged)][-1]
    assert (changed.from_status, changed.to_status) == ("incomplete", "completed")


def test_withdrawn_is_final() -> None:
    reg, events = run(admitted(), Close(), activated(), uploaded(T.HK_PERMANENT_ID_CARD))
    assert reg.status is Status.WITHDRAWN
    assert types(events).count("RegistrationWithdrawn") == 1
    assert types(events)[-1] == "RegistrationWithdrawn"


def test_completed_is_final() -> None:
    reg, events = run(
        *READY,
        verified(T.HK_PERMANENT_ID_CARD),
        uploaded(T.HK_PERMANENT_ID_CARD, 2),
        rejected(T.HK_PERMANENT_ID_CARD, 2),
        Close(),
    )
    assert reg.status is Status.COMPLETED
    assert types(events).count("RegistrationStatusChanged") == 2  # opened, completed


def test_closing_twice_changes_nothing() -> None:
    reg, _ = run(*READY, Close())
    before = (reg.status, len(reg.doc["history"]))
    assert deliver(reg, Close()) == []
    assert (reg.status, len(reg.doc["history"])) == before


def test_admitted_after_the_intake_closed_is_withdrawn_at_once() -> None:
    closed = Intake(2027, INTAKE.registration_deadline, INTAKE.term_start, None, T0)
    reg, events = run(admitted(), intake=closed)
    assert reg.status is Status.WITHDRAWN
    assert types(events) == [
        "RegistrationStatusChanged",
        "RegistrationStatusChanged",
        "RegistrationWithdrawn",
    ]


# -- the form -----------------------------------------------------------------------


def test_the_form_is_submitted_once_only() -> None:
    reg, _events = run(admitted())
    submitted = deliver(reg, Submit(PERMANENT))
    assert isinstance(submitted[0], FormSubmitted)
    assert submitted[0].required_documents == ["hk_permanent_id_card"]
    assert submitted[0].hkid_number == "A123456(3)"
    with pytest.raises(AlreadySubmitted, match="only once"):
        deliver(reg, Submit(PERMANENT))
    with pytest.raises(AlreadySubmitted):
        reg.save_draft(FormFields(gender="female"), INTAKE, T0)


def test_an_incomplete_form_is_refused_and_nothing_changes() -> None:
    reg, _ = run(admitted())
    with pytest.raises(FormRefused) as refused:
        deliver(reg, Submit(FormFields(gender="female")))
    assert "declaration" in {p.field for p in refused.value.problems}
    assert not reg.submitted
    assert reg.doc["draft"] == {}


def test_drafts_merge_and_feed_the_submission() -> None:
    reg, _ = run(admitted())
    reg.save_draft(FormFields(gender="female", nationality="chn"), INTAKE, T0)
    reg.save_draft(FormFields(residency="hk_permanent"), INTAKE, T0)
    assert reg.form_view()["gender"] == "female"
    assert reg.form_view()["surname"] == "Chan"
    assert states(reg)["hk_permanent_id_card"] == "missing"
    rest = FormFields.model_validate(
        {k: v for k, v in FORM_BASE.items() if k not in ("gender", "nationality")}
        | {"hkid_number": "A123456(3)"}
    )
    submitted = deliver(reg, Submit(rest))
    assert isinstance(submitted[0], FormSubmitted)
    assert submitted[0].gender == "female"


def test_no_draft_before_the_admission_arrives() -> None:
    reg, _ = run(activated())
    with pytest.raises(NotAdmitted):
        reg.save_draft(FormFields(gender="female"), INTAKE, T0)


def test_corrected_particulars_require_the_supporting_document() -> None:
    reg, events = run(admitted(), Submit(NON_PERMANENT))
    submitted = events[-1]
    assert isinstance(submitted, FormSubmitted)
    assert submitted.required_documents == [
        "hk_id_card",
        "passport",
        "dependant_visa",
        "supporting_document",
    ]
    assert states(reg)["supporting_document"] == "missing"


# -- order and duplicates -------------------------------------------------------------


def test_verified_before_uploaded_before_admitted() -> None:
    reg, events = run(
        verified(T.HK_PERMANENT_ID_CARD), uploaded(T.HK_PERMANENT_ID_CARD), activated()
    )
    assert reg.status is None
    assert events == []
    deliver(reg, admitted())
    events = deliver(reg, Submit(PERMANENT))
    assert reg.status is Status.COMPLETED
    assert types(events) == ["FormSubmitted", "RegistrationStatusChanged", "RegistrationCompleted"]


def test_an_older_version_rejected_after_a_newer_upload_leaves_the_newer() -> None:
    reg, _ = run(*READY, uploaded(T.HK_PERMANENT_ID_CARD, 2), rejected(T.HK_PERMANENT_ID_CARD, 1))
    item = next(i for i in reg.checklist(INTAKE) if i.item == "hk_permanent_id_card")
    assert (item.state.value, item.document) == ("uploaded", "hk_permanent_id_card v2")


def test_a_rejected_newer_version_shows_its_reason() -> None:
    reg, _ = run(*READY, uploaded(T.HK_PERMANENT_ID_CARD, 2), rejected(T.HK_PERMANENT_ID_CARD, 2))
    item = next(i for i in reg.checklist(INTAKE) if i.item == "hk_permanent_id_card")
    assert (item.state.value, item.reason) == ("rejected", "blurred")


def test_a_document_expiring_before_1_september_does_not_count() -> None:
    reg, _ = run(*READY, verified(T.HK_PERMANENT_ID_CARD, expiry=date(2027, 9, 1)))
    item = next(i for i in reg.checklist(INTAKE) if i.item == "hk_permanent_id_card")
    assert item.state.value == "rejected"
    assert item.reason is not None
    assert "renewed" in item.reason
    assert reg.status is Status.IN_PROGRESS
    deliver(reg, verified(T.HK_PERMANENT_ID_CARD, 2, expiry=date(2027, 9, 2)))
    assert reg.doc["status"] == "completed"


def test_any_travel_document_satisfies_the_item() -> None:
    reg, _ = run(
        admitted(), Submit(NON_PERMANENT), rejected(T.PASSPORT), uploaded(T.EXIT_ENTRY_PERMIT)
    )
    assert states(reg)["travel_document"] == "uploaded"
    deliver(reg, verified(T.DOCUMENT_OF_IDENTITY))
    assert states(reg)["travel_document"] == "verified"


@pytest.mark.parametrize(
    ("steps", "state"),
    [
        ([photo_submitted(1)], "uploaded"),
        ([photo_submitted(1), photo_rejected(1)], "rejected"),
        ([photo_submitted(1), photo_rejected(1), photo_submitted(2)], "uploaded"),
        ([photo_rejected(1), photo_submitted(2), photo_submitted(1)], "uploaded"),
        ([photo_approved(1), photo_submitted(2), photo_rejected(2)], "verified"),
    ],
    ids=["submitted", "rejected", "resubmitted", "resubmitted_out_of_order", "approved_stays"],
)
def test_photo_states(steps: list[Step], state: str) -> None:
    reg, _ = run(admitted(), *steps)
    assert states(reg)["photo"] == state


def test_every_event_delivered_twice_publishes_nothing_more() -> None:
    steps: list[Step] = [*READY, verified(T.HK_PERMANENT_ID_CARD), photo_submitted(1)]
    once, events_once = run(*steps)
    twice = Registration.stub(NO, T0)
    events_twice: list[EventPayload] = []
    for step in steps:
        events_twice += deliver(twice, step)
        if not isinstance(step, Submit):
            events_twice += deliver(twice, step)
    assert types(events_twice) == types(events_once)
    assert states(twice) == states(once)


def test_card_progress_is_kept_in_the_history_without_a_status_change() -> None:
    reg, _ = run(*READY, verified(T.HK_PERMANENT_ID_CARD))
    issued = CardIssued.model_validate(
        example_payload(CardIssued).model_dump() | {"student_no": NO}
    )
    reg.card_progress(issued, T0, Cause("CardIssued"))
    assert reg.status is Status.COMPLETED
    assert reg.doc["history"][-1]["detail"] == f"card {issued.card_no} issued"


def test_history_records_every_change_with_its_cause() -> None:
    reg, _ = run(*READY, verified(T.HK_PERMANENT_ID_CARD))
    causes = [h["cause"] for h in reg.doc["history"]]
    assert causes[:2] == ["StudentAdmitted", "AccountActivated"]
    assert "submit_form" in causes
    last = reg.doc["history"][-1]
    assert (last["from_status"], last["to_status"]) == ("in_progress", "completed")


# -- any order, same result -------------------------------------------------------------

UNIVERSE: list[Step] = [
    activated(),
    uploaded(T.HK_PERMANENT_ID_CARD),
    verified(T.HK_PERMANENT_ID_CARD),
    uploaded(T.HK_PERMANENT_ID_CARD, 2),
    rejected(T.HK_PERMANENT_ID_CARD, 2),
    uploaded(T.HK_ID_CARD),
    verified(T.HK_ID_CARD),
    uploaded(T.HK_ID_CARD, 2),
    rejected(T.HK_ID_CARD, 2),
    uploaded(T.PASSPORT),
    rejected(T.PASSPORT),
    uploaded(T.EXIT_ENTRY_PERMIT),
    verified(T.EXIT_ENTRY_PERMIT, expiry=date(2027, 6, 30)),
    uploaded(T.DOCUMENT_OF_IDENTITY),
    verified(T.DOCUMENT_OF_IDENTITY),
    uploaded(T.DEPENDANT_VISA),
    verified(T.DEPENDANT_VISA),
    uploaded(T.DEED_POLL),
    verified(T.DEED_POLL),
    uploaded(T.TUITION_RECEIPT),
    rejected(T.TUITION_RECEIPT),
    uploaded(T.TUITION_RECEIPT, 2),
    verified(T.TUITION_RECEIPT, 2),
    uploaded(T.PARENT_CONSENT_FORM),
    photo_submitted(1),
    photo_rejected(1),
    photo_submitted(2),
    photo_approved(2),
]
PROFILES = [
    (admitted(), Submit(PERMANENT)),
    (admitted(dob=date(2010, 1, 1), route=AdmissionRoute.NON_JUPAS), Submit(NON_PERMANENT)),
]


def _ordered(steps: list[Step], admission: Step, submit: Step) -> list[Step]:
    """Steps in the given order; the student submits only after their admission."""
    out = [s for s in steps if s is not submit]
    if submit in steps:
        out.insert(out.index(admission) + 1, submit)
    return out


def outcome(steps: list[Step]) -> tuple[Any, ...]:
    reg, events = run(*steps)
    moves = Counter(
        (e.from_status, e.to_status) for e in events if isinstance(e, RegistrationStatusChanged)
    )
    items = [(i.item, i.state.value, i.reason, i.document) for i in reg.checklist(INTAKE)]
    return reg.status, items, sorted(moves.items(), key=str)


@st.composite
def two_orders(draw: st.DrawFn) -> tuple[list[Step], list[Step]]:
    admission, submit = draw(st.sampled_from(PROFILES))
    # Most of the universe, so that registrations complete and late facts matter.
    dropped = draw(st.sets(st.integers(min_value=0, max_value=len(UNIVERSE) - 1), max_size=8))
    steps: list[Step] = [admission, *(s for i, s in enumerate(UNIVERSE) if i not in dropped)]
    if draw(st.booleans()):
        steps.append(submit)
    first = draw(st.permutations(steps))
    second = draw(st.permutations(steps))
    # Redelivery: some events arrive again (the student cannot submit twice).
    again = draw(st.lists(st.sampled_from([s for s in steps if s is not submit]), max_size=5))
    position = draw(st.integers(min_value=0, max_value=len(second)))
    second = [*second[:position], *again, *second[position:]]
    return _ordered(first, admission, submit), _ordered(second, admission, submit)


@settings(max_examples=200, deadline=None)
@given(two_orders())
def test_any_order_of_the_same_events_ends_in_the_same_state(
    orders: tuple[list[Step], list[Step]],
) -> None:
    first, second = orders
    assert outcome(first) == outcome(second)


@settings(max_examples=100, deadline=None)
@given(two_orders())
def test_any_order_then_the_deadline_ends_in_the_same_status(
    orders: tuple[list[Step], list[Step]],
) -> None:
    first, second = orders
    assert outcome([*first, Close()]) == outcome([*second, Close()])


def test_the_property_can_fail_when_order_mattered() -> None:
    # A rule that let a later upload undo a verification would break the property:
    # verified v1 then uploaded v2 must give the same as uploaded v2 then verified v1.
    a = outcome(
        [
            admitted(),
            *READY[1:],
            verified(T.HK_PERMANENT_ID_CARD),
            uploaded(T.HK_PERMANENT_ID_CARD, 2),
        ]
    )
    b = outcome(
        [
            admitted(),
            *READY[1:],
            uploaded(T.HK_PERMANENT_ID_CARD, 2),
            verified(T.HK_PERMANENT_ID_CARD),
        ]
    )
    assert a == b
    assert a[0] is Status.COMPLETED
