"""Composition root of the notifier service."""

from __future__ import annotations

from fastapi import FastAPI
from opr_shared.runtime import ServiceRuntime, Worker, create_http_app
from opr_shared.settings import ServiceSettings

from notifier import messaging
from notifier.api.routes import router
from notifier.domain.messages import House
from notifier.handlers.delivery import DeliveryWorker
from notifier.handlers.reminders import ReminderWorker
from notifier.settings import Settings
from notifier.smtp import smtp_sender
from notifier.store import INDEXES


def house_of(settings: Settings) -> House:
    return House(portal_url=settings.portal_url, enquiry_email=settings.enquiry_email)


def build_runtime(settings: ServiceSettings) -> ServiceRuntime:
    assert isinstance(settings, Settings)
    house = house_of(settings)

    def workers(runtime: ServiceRuntime) -> list[Worker]:
        return [
            DeliveryWorker(
                runtime.uow,
                smtp_sender(settings),
                mail_from=settings.mail_from,
                poll_seconds=settings.delivery_poll_seconds,
                max_attempts=settings.delivery_max_attempts,
                max_backoff_seconds=settings.delivery_max_backoff_seconds,
                lease_seconds=settings.delivery_lease_seconds,
                concurrency=settings.delivery_concurrency,
            ),
            ReminderWorker(
                runtime.uow,
                house,
                poll_seconds=settings.reminder_poll_seconds,
                days_before=settings.reminder_days_before,
            ),
        ]

    return ServiceRuntime(
        settings, subscriptions=messaging.subscriptions(house), indexes=INDEXES, workers=workers
    )


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    runtime = build_runtime(settings or Settings())
    return create_http_app(
        runtime,
        routers=[router],
        title="Notifier",
        description=(
            "E-mail for every milestone (bilingual), the delivery log, resending failed "
            "deliveries, template previews and each student's inbox."
        ),
    )
