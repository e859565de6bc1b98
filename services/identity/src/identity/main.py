"""Composition root of the identity service."""

from __future__ import annotations

from fastapi import FastAPI
from opr_shared.runtime import ServiceRuntime, create_http_app
from opr_shared.settings import ServiceSettings

from identity import messaging
from identity.api.routes import router
from identity.settings import Settings
from identity.store import INDEXES


def build_runtime(settings: ServiceSettings) -> ServiceRuntime:
    return ServiceRuntime(settings, subscriptions=messaging.subscriptions(), indexes=INDEXES)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    runtime = build_runtime(settings or Settings())
    return create_http_app(
        runtime,
        routers=[router],
        title="Identity",
        description="Admitted-student roster, invitations, accounts, logins and tokens.",
    )
