"""Composition root of the notifier service."""

from __future__ import annotations

from fastapi import FastAPI
from opr_shared.runtime import ServiceRuntime, Worker, create_http_app
from opr_shared.settings import ServiceSettings

from notifier import messaging
from notifier.api.routes import router
from notifier.handlers.delivery import DeliveryWorker
from notifier.settings import Settings
from notifier.smtp import smtp_sender
from notifier.store import INDEXES


def build_runtime(settings: ServiceSettings) -> ServiceRuntime:
    assert isinstance(settings, Settings)

    def workers(runtime: ServiceRuntime) -> list[Worker]:
        return [
            DeliveryWorker(
                runtime.uow,
                smtp_sender(settings),
                mail_from=settings.mail_from,
                poll_seconds=settings.delivery_poll_seconds,
                max_attempts=settings.delivery_max_attempts,
                max_backoff_seconds=settings.delivery_max_backoff_seconds,
            )
        ]

    return ServiceRuntime(
        settings, subscriptions=messaging.subscriptions(), indexes=INDEXES, workers=workers
    )


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    runtime = build_runtime(settings or Settings())
    return create_http_app(
        runtime,
        routers=[router],
        title="Notifier",
        description="E-mail for every milestone, the delivery log and each student's inbox.",
    )
