"""Registration's HTTP API: the student's own registration, the intake calendar and
the registry's cohort view. Thin: every rule lives in the domain."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query
from fastapi.responses import StreamingResponse
from opr_shared.auth import Principal, Role, current_student, require_roles
from opr_shared.runtime import uow_of
from opr_shared.store.mongo import UnitOfWork

from registration.api.views import (
    CloseOut,
    IntakeIn,
    IntakeOut,
    IntakeScheduledOut,
    MyRegistrationOut,
    RegistrationOut,
    RegistrationPage,
    detail,
    mine,
    summary,
)
from registration.domain.form import FormFields
from registration.domain.intake import InvalidIntake
from registration.domain.registration import AlreadySubmitted, FormRefused, NotAdmitted, Status
from registration.handlers import form as form_handlers
from registration.handlers import intakes as intake_handlers
from registration.store import REGISTRATIONS

router = APIRouter()

Uow = Annotated[UnitOfWork, Depends(uow_of)]
Student = Annotated[Principal, Depends(current_student)]
registry = require_roles(Role.REGISTRY_OFFICER, Role.ADMIN)
Registry = Annotated[Principal, Depends(registry)]
Year = Annotated[int, Path(ge=2000, le=2100, description="Intake year, e.g. 2027.")]

NOT_ADMITTED = "no registration record for you yet: your admission has not reached registration"


# -- the student's own registration ---------------------------------------------


@router.get(
    "/me",
    response_model=MyRegistrationOut,
    tags=["my registration"],
    responses={404: {"description": "No registration record for this student yet"}},
)
async def get_my_registration(student: Student, uow: Uow) -> MyRegistrationOut:
    """The form (prefilled with the particulars on record), status and checklist."""
    assert student.student_no is not None
    try:
        snap = await form_handlers.view_registration(uow, student.student_no)
    except NotAdmitted:
        raise HTTPException(404, NOT_ADMITTED) from None
    return mine(snap.registration, snap.intake)


@router.put(
    "/me/form",
    response_model=MyRegistrationOut,
    tags=["my registration"],
    responses={
        404: {"description": "No registration record for this student yet"},
        409: {"description": "The form was already submitted"},
        422: {"description": "A field has the wrong format (e.g. an HKID check digit)"},
    },
)
async def save_my_draft(
    student: Student, uow: Uow, fields: Annotated[FormFields, Body()]
) -> MyRegistrationOut:
    """Save a draft: the fields given are merged into the draft (null clears one)."""
    assert student.student_no is not None
    try:
        snap = await form_handlers.save_draft(uow, student.student_no, fields)
    except NotAdmitted:
        raise HTTPException(404, NOT_ADMITTED) from None
    except AlreadySubmitted as exc:
        raise HTTPException(409, str(exc)) from None
    return mine(snap.registration, snap.intake)


@router.post(
    "/me/submit",
    response_model=MyRegistrationOut,
    tags=["my registration"],
    responses={
        404: {"description": "No registration record for this student yet"},
        409: {"description": "The form was already submitted: it is accepted once only"},
        422: {"description": "The form is incomplete; each problem names its field"},
    },
)
async def submit_my_form(
    student: Student, uow: Uow, fields: Annotated[FormFields | None, Body()] = None
) -> MyRegistrationOut:
    """Submit the form once: the draft, overlaid by any fields in the body."""
    assert student.student_no is not None
    try:
        snap = await form_handlers.submit_form(uow, student.student_no, fields)
    except NotAdmitted:
        raise HTTPException(404, NOT_ADMITTED) from None
    except AlreadySubmitted as exc:
        raise HTTPException(409, str(exc)) from None
    except FormRefused as exc:
        raise HTTPException(
            422,
            {
                "message": "the form cannot be submitted yet",
                "problems": [{"field": p.field, "reason": p.reason} for p in exc.problems],
            },
        ) from None
    return mine(snap.registration, snap.intake)


# -- intakes ---------------------------------------------------------------------


@router.get("/intakes", response_model=list[IntakeOut], tags=["intakes"])
async def list_intakes(_staff: Registry, uow: Uow) -> list[IntakeOut]:
    return [IntakeOut.of(i) for i in await intake_handlers.list_intakes(uow)]


@router.get(
    "/intakes/{year}",
    response_model=IntakeOut,
    tags=["intakes"],
    responses={404: {"description": "No calendar for this intake"}},
)
async def get_intake(year: Year, _staff: Registry, uow: Uow) -> IntakeOut:
    try:
        return IntakeOut.of(await intake_handlers.get_intake(uow, year))
    except intake_handlers.UnknownIntake:
        raise HTTPException(404, f"no calendar for intake {year}") from None


@router.put(
    "/intakes/{year}",
    response_model=IntakeScheduledOut,
    tags=["intakes"],
    responses={422: {"description": "The dates do not fit together, or the intake is closed"}},
)
async def put_intake(year: Year, body: IntakeIn, _staff: Registry, uow: Uow) -> IntakeScheduledOut:
    """Set the intake's calendar; publishes IntakeScheduled when it changed."""
    try:
        intake, changed = await intake_handlers.schedule_intake(
            uow, year, body.registration_deadline, body.term_start, body.age_cutoff
        )
    except InvalidIntake as exc:
        raise HTTPException(422, str(exc)) from None
    return IntakeScheduledOut(**IntakeOut.of(intake).model_dump(), changed=changed)


@router.post(
    "/intakes/{year}/close",
    response_model=CloseOut,
    tags=["intakes"],
    responses={
        404: {"description": "No calendar for this intake"},
        409: {"description": "The registration deadline has not passed yet"},
    },
)
async def close_intake(year: Year, _staff: Registry, uow: Uow) -> CloseOut:
    """Apply the deadline to every record of the intake; closing again changes nothing."""
    try:
        report = await intake_handlers.close_intake(uow, year)
    except intake_handlers.UnknownIntake:
        raise HTTPException(404, f"no calendar for intake {year}: set it first") from None
    except intake_handlers.DeadlineNotPassed as exc:
        raise HTTPException(409, str(exc)) from None
    return CloseOut(
        intake_year=report.intake_year,
        closed_at=report.closed_at,
        already_closed=report.already_closed,
        applied=report.applied,
        outcomes=report.outcomes,
    )


# -- the registry's cohort view -----------------------------------------------------

StatusFilter = Annotated[Status | None, Query(description="Only records with this status.")]
ItemFilter = Annotated[
    str | None,
    Query(pattern=r"^[a-z][a-z0-9_]*$", max_length=64, description="Only with this item due."),
]
TextFilter = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=100,
        description="Words that start a name, student number, JUPAS number, programme or email.",
    ),
]
IntakeFilter = Annotated[int | None, Query(ge=2000, le=2100)]
ProgrammeFilter = Annotated[
    str | None,
    Query(
        pattern=r"^[A-Za-z0-9-]{1,20}$",
        description="Only students of this programme code (any letter case).",
    ),
]


def cohort_query(
    status: Status | None,
    item: str | None,
    q: str | None,
    intake_year: int | None,
    programme: str | None = None,
) -> dict[str, Any]:
    query: dict[str, Any] = {
        "status": status.value if status else {"$in": [s.value for s in Status]}
    }
    if intake_year is not None:
        query["intake_year"] = intake_year
    if programme:
        query["record.programme_code"] = programme.upper()
    if item:
        query["outstanding_items"] = item
    words = (q or "").casefold().split()[:5]
    if words:
        query["$and"] = [{"search_terms": {"$regex": "^" + re.escape(w)}} for w in words]
    return query


SUMMARY_FIELDS = {"history": 0, "documents": 0, "photos": 0}


@router.get("/registrations", response_model=RegistrationPage, tags=["cohort"])
async def list_registrations(
    _staff: Registry,
    uow: Uow,
    status: StatusFilter = None,
    item: ItemFilter = None,
    q: TextFilter = None,
    intake_year: IntakeFilter = None,
    programme: ProgrammeFilter = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> RegistrationPage:
    """Search the cohort by status, outstanding item, intake, programme and text."""
    query = cohort_query(status, item, q, intake_year, programme)
    collection = uow.db[REGISTRATIONS]
    total = await collection.count_documents(query)
    cursor = collection.find(query, SUMMARY_FIELDS).sort("_id", 1).skip(offset).limit(limit)
    items = [summary(doc) async for doc in cursor]
    return RegistrationPage(total=total, limit=limit, offset=offset, items=items)


CSV_COLUMNS = (
    "student_no",
    "status",
    "intake_year",
    "surname",
    "given_names",
    "chinese_name",
    "programme_code",
    "admission_route",
    "submitted_at",
    "university_email",
    "personal_email",
    "outstanding_items",
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = ";".join(str(v) for v in value)
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    # Spreadsheets run cells starting with these as formulas.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


@router.get(
    "/registrations/export.csv",
    tags=["cohort"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "The matching records as CSV"}},
)
async def export_registrations(
    _staff: Registry,
    uow: Uow,
    status: StatusFilter = None,
    item: ItemFilter = None,
    q: TextFilter = None,
    intake_year: IntakeFilter = None,
    programme: ProgrammeFilter = None,
) -> StreamingResponse:
    """The cohort (same filters as the list) as CSV, one row per student."""
    query = cohort_query(status, item, q, intake_year, programme)
    cursor = uow.db[REGISTRATIONS].find(query, SUMMARY_FIELDS).sort("_id", 1)

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        async for doc in cursor:
            row = summary(doc).model_dump()
            writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
            if buffer.tell() > 64_000:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="registrations-{stamp}.csv"'},
    )


@router.get(
    "/registrations/{student_no}",
    response_model=RegistrationOut,
    tags=["cohort"],
    responses={404: {"description": "No registration record for this student number"}},
)
async def get_registration(
    student_no: Annotated[str, Path(pattern=r"^\d{8,10}$")],
    _staff: Registry,
    uow: Uow,
) -> RegistrationOut:
    """One student's registration: form, checklist and full history (time and cause)."""
    try:
        snap = await form_handlers.view_registration(uow, student_no)
    except NotAdmitted:
        raise HTTPException(404, f"no registration record for student {student_no}") from None
    return detail(snap.registration, snap.intake)
