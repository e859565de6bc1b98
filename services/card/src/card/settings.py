"""Settings of the card service."""

from __future__ import annotations

from opr_shared.settings import ServiceSettings
from pydantic import Field


class Settings(ServiceSettings):
    service_name: str = "card"
    card_slot_offer_seconds: float = Field(
        default=5.0, gt=0, description="How often issued cards without a slot are offered one."
    )
