"""Request and response bodies of the documents API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from opr_shared.events.catalogue import DocumentType
from pydantic import BaseModel, Field, StringConstraints

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class DocumentOut(BaseModel):
    id: uuid.UUID
    doc_type: DocumentType
    version: int
    status: str = Field(description="pending, verified, rejected or superseded.")
    content_type: str
    size_bytes: int
    sha256: str
    filename: str | None = Field(default=None, description="The uploaded file's name, for display.")
    uploaded_at: datetime
    expiry_date: date | None = None
    reason: str | None = Field(default=None, description="Why it was rejected.")
    reviewed_at: datetime | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> DocumentOut:
        return cls.model_validate({**row, "id": row["_id"]})


class PhotoOut(BaseModel):
    id: uuid.UUID
    version: int
    status: str = Field(description="pending, approved, rejected or superseded.")
    content_type: str
    width: int
    height: int
    size_bytes: int
    sha256: str
    filename: str | None = None
    submitted_at: datetime
    reason: str | None = None
    reviewed_at: datetime | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> PhotoOut:
        return cls.model_validate({**row, "id": row["_id"]})


class Age(BaseModel):
    hours: float = Field(description="Hours since it was submitted.")
    working_days: int = Field(
        description="Working days waited: Monday to Friday by Hong Kong dates, "
        "general holidays not counted."
    )
    overdue: bool = Field(description="Waited more than 5 working days.")


class PhotoChecks(BaseModel):
    """What the automatic checks measured on a photo they passed."""

    faces: int = Field(description="Faces found (one is required).")
    brightness: float = Field(description="Mean luminance, 0-255.")
    sharpness: float = Field(description="Variance of the Laplacian (higher is sharper).")
    width: int
    height: int


class QueueItem(BaseModel):
    id: uuid.UUID
    kind: Literal["document", "photo"]
    student_no: str
    doc_type: DocumentType | None = None
    version: int
    status: str
    content_type: str
    size_bytes: int
    submitted_at: datetime
    age: Age
    content_path: str = Field(description="Where to read the file (with a staff token).")
    filename: str | None = Field(default=None, description="The uploaded file's name.")
    checks: PhotoChecks | None = Field(
        default=None, description="Photos: what the automatic checks measured."
    )


class QueueOut(BaseModel):
    kind: Literal["document", "photo"]
    status: str
    count: int
    overdue: int = Field(description="How many of the listed items are overdue.")
    items: list[QueueItem]


class VerifyIn(BaseModel):
    expiry_date: date | None = Field(
        default=None, description="Expiry date on the document, where it has one."
    )


class RejectIn(BaseModel):
    reason: Reason = Field(description="Why, shown to the student.")


class ContentLinkOut(BaseModel):
    url: str = Field(description="Opens the file without a token until it expires.")
    expires_at: datetime
