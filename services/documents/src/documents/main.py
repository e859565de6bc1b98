"""Composition root of the documents service."""

from __future__ import annotations

from fastapi import FastAPI
from opr_shared.runtime import ServiceRuntime, create_http_app
from opr_shared.settings import ServiceSettings

from documents import messaging
from documents.settings import Settings
from documents.store import INDEXES


def build_runtime(settings: ServiceSettings) -> ServiceRuntime:
    return ServiceRuntime(
        settings, subscriptions=messaging.subscriptions(), indexes=INDEXES, uses_bucket=True
    )


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    runtime = build_runtime(settings or Settings())
    return create_http_app(
        runtime,
        routers=[],
        title="Documents",
        description="Identity and visa documents, card photos, content checks and verification.",
    )
