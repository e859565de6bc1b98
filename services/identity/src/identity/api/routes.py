"""Roster import and invitations."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from opr_shared.runtime import uow_of
from opr_shared.store.mongo import UnitOfWork
from pydantic import BaseModel, Field

from identity.handlers.admissions import InvitePolicy, import_roster, issue_invitations
from identity.settings import Settings

router = APIRouter(tags=["admissions"])


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.runtime.settings
    return settings


def invite_policy(settings: Annotated[Settings, Depends(settings_of)]) -> InvitePolicy:
    return InvitePolicy(
        public_base_url=settings.public_base_url,
        ttl=timedelta(hours=settings.activation_token_ttl_hours),
    )


class RowErrorOut(BaseModel):
    row: int = Field(description="1-based position of the row in the roster")
    field: str
    message: str


class ImportOut(BaseModel):
    created: int
    updated: int
    unchanged: int
    rejected: int
    invited: int
    errors: list[RowErrorOut]


class InvitationsIn(BaseModel):
    student_nos: list[str] | None = Field(
        default=None,
        description="Re-invite these students; omit to invite everyone not yet invited.",
    )


class InvitationsOut(BaseModel):
    invited: int


@router.post("/admissions/import", response_model=ImportOut)
async def import_admissions(
    rows: Annotated[list[Any], Body(description="Roster rows, one object per admitted student.")],
    uow: Annotated[UnitOfWork, Depends(uow_of)],
    settings: Annotated[Settings, Depends(settings_of)],
    policy: Annotated[InvitePolicy, Depends(invite_policy)],
    invite: Annotated[
        bool, Query(description="Also invite the students this import creates.")
    ] = False,
) -> ImportOut:
    result = await import_roster(
        uow, rows, chunk_size=settings.import_chunk_size, invite=policy if invite else None
    )
    return ImportOut(
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        rejected=result.rejected,
        invited=result.invited,
        errors=[RowErrorOut(row=e.row, field=e.field, message=e.message) for e in result.errors],
    )


@router.post("/invitations", response_model=InvitationsOut)
async def send_invitations(
    uow: Annotated[UnitOfWork, Depends(uow_of)],
    policy: Annotated[InvitePolicy, Depends(invite_policy)],
    body: InvitationsIn | None = None,
) -> InvitationsOut:
    invited = await issue_invitations(uow, policy, body.student_nos if body else None)
    return InvitationsOut(invited=invited)
