"""Composition root of the card service."""

from __future__ import annotations

from fastapi import FastAPI
from opr_shared.runtime import ServiceRuntime, create_http_app
from opr_shared.settings import ServiceSettings

from card import messaging
from card.api.routes import router
from card.settings import Settings
from card.store import INDEXES


def build_runtime(settings: ServiceSettings) -> ServiceRuntime:
    return ServiceRuntime(
        settings, subscriptions=messaging.subscriptions(), indexes=INDEXES, uses_bucket=True
    )


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    runtime = build_runtime(settings or Settings())
    return create_http_app(
        runtime,
        routers=[router],
        title="Card",
        description="Student cards: issue, numbering, collection slots, collection.",
    )
