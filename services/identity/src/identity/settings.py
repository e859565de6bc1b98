"""Settings of the identity service."""

from __future__ import annotations

from opr_shared.settings import ServiceSettings
from pydantic import Field


class Settings(ServiceSettings):
    service_name: str = "identity"
    activation_token_ttl_hours: int = Field(default=14 * 24, ge=1)
    import_chunk_size: int = Field(default=200, ge=1, le=2000)
