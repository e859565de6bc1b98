"""Composition root of the registration service."""

from __future__ import annotations

from fastapi import FastAPI
from opr_shared.runtime import ServiceRuntime, create_http_app
from opr_shared.settings import ServiceSettings

from registration import messaging
from registration.api.routes import router
from registration.settings import Settings
from registration.store import INDEXES


def build_runtime(settings: ServiceSettings) -> ServiceRuntime:
    return ServiceRuntime(settings, subscriptions=messaging.subscriptions(), indexes=INDEXES)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    runtime = build_runtime(settings or Settings())
    return create_http_app(
        runtime,
        routers=[router],
        title="Registration",
        description="Registration forms, checklists, status, deadlines and the staff cohort view.",
    )
