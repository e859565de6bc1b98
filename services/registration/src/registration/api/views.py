"""Request and response schemas of the registration API, and how records map to them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from opr_shared.events.catalogue import OutstandingItem
from pydantic import AwareDatetime, BaseModel, Field

from registration.domain.intake import Intake
from registration.domain.registration import Registration


class IntakeIn(BaseModel):
    registration_deadline: AwareDatetime = Field(
        description="After this moment the intake may be closed; with a timezone, "
        "e.g. 2027-08-13T17:00:00+08:00.",
        examples=["2027-08-13T17:00:00+08:00"],
    )
    term_start: date = Field(description="First day of term: supplementary items are due by then.")
    age_cutoff: date | None = Field(
        default=None, description="Day 'under 18' is judged on; default 1 September of the year."
    )


class IntakeOut(BaseModel):
    intake_year: int
    registration_deadline: datetime | None
    term_start: date | None
    age_cutoff: date
    closed_at: datetime | None

    @classmethod
    def of(cls, intake: Intake) -> IntakeOut:
        return cls(
            intake_year=intake.year,
            registration_deadline=intake.registration_deadline,
            term_start=intake.term_start,
            age_cutoff=intake.cutoff,
            closed_at=intake.closed_at,
        )


class IntakeScheduledOut(IntakeOut):
    changed: bool = Field(description="False when the same calendar was already set.")


class CloseOut(BaseModel):
    intake_year: int
    closed_at: datetime
    already_closed: bool = Field(description="True when the intake had been closed before.")
    applied: int = Field(description="Records the deadline was applied to by this call.")
    outcomes: dict[str, int] = Field(description="Those records by resulting status.")


class ChecklistItemOut(BaseModel):
    item: str = Field(description="Checklist key, e.g. hk_permanent_id_card or photo.")
    label: str
    label_zh: str
    compulsory: bool = Field(description="Due by the registration deadline if true, else by term.")
    due_by: date | None
    state: str = Field(description="missing, uploaded, verified or rejected.")
    reason: str | None = Field(description="Why it was rejected, if it was.")
    document: str | None = Field(description="The document version behind the state.")
    accepts: list[str] = Field(description="Document types that satisfy the item.")


class HistoryEntry(BaseModel):
    at: datetime
    cause: str = Field(description="Event type or command that made the change.")
    ref: str | None = Field(default=None, description="Its event id, or the intake year.")
    detail: str
    from_status: str | None = None
    to_status: str | None = None


class MyRegistrationOut(BaseModel):
    student_no: str
    status: str
    intake: IntakeOut
    submitted: bool
    submitted_at: datetime | None
    form: dict[str, Any] = Field(description="The submitted form, or the prefilled draft.")
    prefill: dict[str, Any] = Field(description="The particulars on record.")
    checklist: list[ChecklistItemOut]
    outstanding: list[OutstandingItem]


class RegistrationOut(BaseModel):
    student_no: str
    status: str
    record: dict[str, Any]
    prefill: dict[str, Any]
    submitted_at: datetime | None
    form: dict[str, Any] | None
    draft: dict[str, Any]
    account: dict[str, Any] | None
    card: dict[str, Any] | None
    deadline_applied_at: datetime | None
    checklist: list[ChecklistItemOut]
    outstanding: list[OutstandingItem]
    history: list[HistoryEntry]


class RegistrationSummary(BaseModel):
    student_no: str
    status: str
    intake_year: int | None
    surname: str | None
    given_names: str | None
    chinese_name: str | None
    programme_code: str | None
    admission_route: str | None
    submitted_at: datetime | None
    university_email: str | None
    personal_email: str | None
    outstanding_items: list[str]


class RegistrationPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[RegistrationSummary]


def checklist_of(registration: Registration, intake: Intake) -> list[ChecklistItemOut]:
    return [
        ChecklistItemOut(
            item=i.item,
            label=i.requirement.label,
            label_zh=i.requirement.label_zh,
            compulsory=i.compulsory,
            due_by=i.due_by,
            state=i.state.value,
            reason=i.reason,
            document=i.document,
            accepts=[t.value for t in i.requirement.accepts],
        )
        for i in registration.checklist(intake)
    ]


def outstanding_of(registration: Registration, intake: Intake) -> list[OutstandingItem]:
    return [i.outstanding() for i in registration.checklist(intake) if i.state.value != "verified"]


def mine(registration: Registration, intake: Intake) -> MyRegistrationOut:
    doc = registration.doc
    return MyRegistrationOut(
        student_no=registration.student_no,
        status=doc["status"],
        intake=IntakeOut.of(intake),
        submitted=registration.submitted,
        submitted_at=doc.get("submitted_at"),
        form=registration.form_view(),
        prefill=doc.get("prefill") or {},
        checklist=checklist_of(registration, intake),
        outstanding=outstanding_of(registration, intake),
    )


def detail(registration: Registration, intake: Intake) -> RegistrationOut:
    doc = registration.doc
    return RegistrationOut(
        student_no=registration.student_no,
        status=doc["status"],
        record=doc.get("record") or {},
        prefill=doc.get("prefill") or {},
        submitted_at=doc.get("submitted_at"),
        form=doc.get("form"),
        draft=doc.get("draft") or {},
        account=doc.get("account"),
        card=doc.get("card"),
        deadline_applied_at=doc.get("deadline_applied_at"),
        checklist=checklist_of(registration, intake),
        outstanding=outstanding_of(registration, intake),
        history=[HistoryEntry.model_validate(h) for h in doc.get("history", [])],
    )


def summary(doc: dict[str, Any]) -> RegistrationSummary:
    registration = Registration(doc)
    form = registration.form_view()
    record = doc.get("record") or {}
    return RegistrationSummary(
        student_no=registration.student_no,
        status=doc["status"],
        intake_year=doc.get("intake_year"),
        surname=form.get("surname"),
        given_names=form.get("given_names"),
        chinese_name=form.get("chinese_name"),
        programme_code=record.get("programme_code"),
        admission_route=record.get("admission_route"),
        submitted_at=doc.get("submitted_at"),
        university_email=registration.university_email(),
        personal_email=form.get("personal_email"),
        outstanding_items=list(doc.get("outstanding_items") or []),
    )
