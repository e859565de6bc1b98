"""Settings of the documents service."""

from __future__ import annotations

from opr_shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "documents"
