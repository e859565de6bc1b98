"""Composition root of the registration service."""

from __future__ import annotations

from fastapi import FastAPI
from opr_shared.auth import JwksFetcher
from opr_shared.runtime import ServiceRuntime, create_http_app
from opr_shared.settings import ServiceSettings

from registration import messaging
from registration.api.routes import router
from registration.handlers.intakes import seed_demo_intake
from registration.settings import Settings
from registration.store import INDEXES


async def _seed_demo_intake(runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    if not isinstance(settings, Settings) or not settings.demo_intake_enabled:
        return
    if settings.environment == "production":
        return
    await seed_demo_intake(
        runtime.uow,
        settings.demo_intake_year,
        settings.demo_intake_registration_deadline,
        settings.demo_intake_term_start,
        settings.demo_intake_age_cutoff,
    )


def build_runtime(
    settings: ServiceSettings, signing_keys: JwksFetcher | None = None
) -> ServiceRuntime:
    return ServiceRuntime(
        settings,
        subscriptions=messaging.subscriptions(),
        indexes=INDEXES,
        on_start=_seed_demo_intake,
        signing_keys=signing_keys,
    )


def create_app(
    settings: ServiceSettings | None = None, signing_keys: JwksFetcher | None = None
) -> FastAPI:
    runtime = build_runtime(settings or Settings(), signing_keys)
    return create_http_app(
        runtime,
        routers=[router],
        title="Registration",
        description="Registration forms, checklists, status, deadlines and the staff cohort view.",
    )
