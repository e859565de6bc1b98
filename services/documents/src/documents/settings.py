"""Settings of the documents service."""

from __future__ import annotations

from opr_shared.settings import ServiceSettings
from pydantic import Field


class Settings(ServiceSettings):
    service_name: str = "documents"
    max_document_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1, description="Largest document upload accepted."
    )
    max_photo_bytes: int = Field(
        default=5 * 1024 * 1024, ge=1, description="Largest card photo upload accepted."
    )
    max_image_pixels: int = Field(
        default=40_000_000, ge=1, description="Images declaring more pixels are refused undecoded."
    )
    upload_budget_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1,
        description="Bytes of uploads received at once (each reserves its declared size); "
        "the rest wait their turn. An upload holds about twice its size in memory.",
    )
    upload_wait_seconds: float = Field(
        default=30,
        gt=0,
        description="How long an upload waits for room before it is answered 503 (busy).",
    )
    upload_max_waiting: int = Field(
        default=64,
        ge=0,
        description="Uploads that may wait for room at once; the next is answered 503 at once.",
    )
    max_pdf_pages: int = Field(default=100, ge=1, description="PDFs with more pages are refused.")
    content_link_seconds: int = Field(
        default=300, ge=10, le=3600, description="Lifetime of a staff link to a file."
    )
    orphan_sweep_seconds: float = Field(
        default=3600,
        ge=0,
        description="How often files no record names are looked for and removed (0: never).",
    )
    orphan_grace_seconds: float = Field(
        default=3600,
        ge=300,
        description="Age a file must reach before it counts as unreferenced "
        "(an upload's record is committed within seconds of its file).",
    )
