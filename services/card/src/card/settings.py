"""Settings of the card service."""

from __future__ import annotations

from opr_shared.settings import ServiceSettings
from pydantic import Field


class Settings(ServiceSettings):
    service_name: str = "card"
    card_slot_offer_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often issued cards without a slot are offered one (besides right"
        " after each issue in this process).",
    )
    card_number_block: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Card serials a process reserves at a time (unused ones of a stopped"
        " process are skipped: numbers stay unique, with gaps).",
    )
