"""Roster import (JSON or CSV, answered at once or run as a job) and invitations."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from opr_shared.auth import Principal, Role, require_roles
from pydantic import BaseModel, Field

from identity.api.context import Identity, identity_of
from identity.domain.roster import RosterFormatError, rows_from_csv
from identity.handlers.admissions import ImportResult, issue_invitations

router = APIRouter(tags=["admissions"])

Registry = Annotated[Principal, Depends(require_roles(Role.REGISTRY_OFFICER, Role.ADMIN))]
IdentityDep = Annotated[Identity, Depends(identity_of)]


class RowErrorOut(BaseModel):
    row: int = Field(
        description="1-based position of the row in the roster (CSV: after the header)"
    )
    field: str
    message: str


class ImportOut(BaseModel):
    import_id: str | None = Field(default=None, description="The import's progress record.")
    created: int
    updated: int
    unchanged: int
    rejected: int
    invited: int
    errors: list[RowErrorOut]


class ImportJobOut(BaseModel):
    import_id: str
    status: str = Field(description="running, completed or failed")
    total: int = Field(description="Rows in the roster")
    processed: int = Field(description="Rows done so far (imported, unchanged or rejected)")
    created: int
    updated: int
    unchanged: int
    rejected: int
    invited: int
    error_count: int
    errors: list[RowErrorOut] = Field(description="Row errors (the first 1000), once completed")
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    failure: str | None = None


class InvitationsIn(BaseModel):
    student_nos: list[str] | None = Field(
        default=None,
        max_length=50_000,
        description="Re-invite these students; omit to invite everyone not yet invited.",
    )


class InvitationsOut(BaseModel):
    invited: int


ROSTER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The roster: a JSON array of rows, or CSV with a header line.",
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


async def _roster_rows(request: Request, max_rows: int) -> list[Any]:
    media_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    raw = await request.body()
    if media_type in ("text/csv", "application/csv"):
        try:
            rows: Any = rows_from_csv(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise HTTPException(400, "the CSV roster must be UTF-8 text") from exc
        except RosterFormatError as exc:
            raise HTTPException(400, str(exc)) from exc
    elif media_type == "application/json" or media_type.endswith("+json"):
        try:
            rows = json.loads(raw)
        except ValueError as exc:
            raise HTTPException(400, f"the roster is not valid JSON: {exc}") from exc
        except RecursionError as exc:  # arrays or objects nested thousands deep
            raise HTTPException(400, "the roster is nested too deeply to be a roster") from exc
        if not isinstance(rows, list):
            raise HTTPException(422, "the roster must be a JSON array of rows")
    else:
        raise HTTPException(415, "send the roster as application/json or text/csv")
    if len(rows) > max_rows:
        raise HTTPException(413, f"a roster may carry at most {max_rows} rows; split it")
    return list(rows)


def _import_out(import_id: str, result: ImportResult) -> ImportOut:
    return ImportOut(
        import_id=import_id,
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        rejected=result.rejected,
        invited=result.invited,
        errors=[RowErrorOut(row=e.row, field=e.field, message=e.message) for e in result.errors],
    )


@router.post(
    "/admissions/import",
    response_model=ImportOut,
    openapi_extra=ROSTER_BODY,
    responses={202: {"model": ImportJobOut, "description": "Accepted as a background job"}},
)
async def import_admissions(
    request: Request,
    identity: IdentityDep,
    staff: Registry,
    invite: Annotated[
        bool, Query(description="Also invite the students this import creates.")
    ] = False,
    background: Annotated[
        bool,
        Query(
            description="Answer 202 at once and import in the background; follow "
            "progress at the Location header (GET /admissions/imports/{id})."
        ),
    ] = False,
) -> Any:
    settings = identity.settings
    rows = await _roster_rows(request, settings.import_max_rows)
    import_id = await identity.imports.start(len(rows), staff.subject)
    policy = identity.invite_policy if invite else None
    if background:
        identity.imports.run_in_background(
            import_id, rows, chunk_size=settings.import_chunk_size, invite=policy
        )
        # The job itself, not the synchronous answer's shape the response model gives.
        job = await _job(identity, import_id)
        return JSONResponse(
            jsonable_encoder(job),
            status_code=202,
            headers={"Location": f"/api/identity/admissions/imports/{import_id}"},
        )
    result = await identity.imports.execute(
        import_id, rows, chunk_size=settings.import_chunk_size, invite=policy
    )
    return _import_out(import_id, result)


async def _job(identity: Identity, import_id: str) -> ImportJobOut:
    doc = await identity.imports.get(import_id)
    if doc is None:
        raise HTTPException(404, "no such import")
    return ImportJobOut(import_id=doc.pop("_id"), **doc)


@router.get("/admissions/imports/{import_id}", response_model=ImportJobOut)
async def import_progress(import_id: str, identity: IdentityDep, _: Registry) -> ImportJobOut:
    return await _job(identity, import_id)


@router.post("/invitations", response_model=InvitationsOut)
async def send_invitations(
    identity: IdentityDep,
    _: Registry,
    body: InvitationsIn | None = None,
) -> InvitationsOut:
    invited = await issue_invitations(
        identity.runtime.uow,
        identity.invite_policy,
        body.student_nos if body else None,
        chunk_size=identity.settings.import_chunk_size,
    )
    return InvitationsOut(invited=invited)
