"""Staff view of registration records."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from opr_shared.runtime import db_of
from pydantic import BaseModel

from registration.store import REGISTRATIONS

router = APIRouter(tags=["registrations"])


class RegistrationOut(BaseModel):
    student_no: str
    status: str
    record: dict[str, Any]
    prefill: dict[str, Any]
    submitted_at: datetime | None


@router.get(
    "/registrations/{student_no}",
    response_model=RegistrationOut,
    responses={404: {"description": "No registration record for this student number"}},
)
async def get_registration(
    student_no: Annotated[str, Path(pattern=r"^\d{8}$")],
    db: Annotated[Any, Depends(db_of)],
) -> RegistrationOut:
    doc = await db[REGISTRATIONS].find_one({"_id": student_no})
    if doc is None:
        raise HTTPException(404, f"no registration record for student {student_no}")
    return RegistrationOut(
        student_no=doc["_id"],
        status=doc["status"],
        record=doc["record"],
        prefill=doc["prefill"],
        submitted_at=doc.get("submitted_at"),
    )
