"""Staff view of card holders."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from opr_shared.runtime import db_of
from pydantic import BaseModel

from card.store import CARD_HOLDERS

router = APIRouter(tags=["cards"])


class CardHolderOut(BaseModel):
    student_no: str
    surname: str
    given_names: str
    programme_code: str
    status: str


@router.get(
    "/holders/{student_no}",
    response_model=CardHolderOut,
    responses={404: {"description": "The card office has no record of this student"}},
)
async def get_holder(
    student_no: Annotated[str, Path(pattern=r"^\d{8}$")],
    db: Annotated[Any, Depends(db_of)],
) -> CardHolderOut:
    doc = await db[CARD_HOLDERS].find_one({"_id": student_no})
    if doc is None:
        raise HTTPException(404, f"no card record for student {student_no}")
    return CardHolderOut(
        student_no=doc["_id"],
        surname=doc["surname"],
        given_names=doc["given_names"],
        programme_code=doc["programme_code"],
        status=doc["status"],
    )
