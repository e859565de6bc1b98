"""Composition root of the card service."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from opr_shared.auth import JwksFetcher
from opr_shared.runtime import ServiceRuntime, Worker, create_http_app
from opr_shared.settings import ServiceSettings

from card import messaging
from card.api.routes import router
from card.handlers.issuing import Issuing
from card.offers import SlotOfferSweep
from card.settings import Settings
from card.store import INDEXES
from card.store.files import LateBucket
from card.store.numbers import CardNumbers


def build_runtime(
    settings: ServiceSettings, signing_keys: JwksFetcher | None = None
) -> ServiceRuntime:
    card_settings = settings if isinstance(settings, Settings) else Settings()
    bucket = LateBucket()
    # Set by an issue's commit, awaited by the slot-offer sweep.
    offers_due = asyncio.Event()
    issuing = Issuing(CardNumbers(card_settings.card_number_block), offer_slots=offers_due.set)

    def workers(runtime: ServiceRuntime) -> list[Worker]:
        interval = card_settings.card_slot_offer_seconds
        return [SlotOfferSweep(runtime.uow, interval, woken=offers_due)]

    runtime = ServiceRuntime(
        settings,
        subscriptions=messaging.subscriptions(bucket, issuing),
        indexes=INDEXES,
        uses_bucket=True,
        workers=workers,
        signing_keys=signing_keys,
    )
    bucket.bind(runtime.objects)
    return runtime


def create_app(
    settings: ServiceSettings | None = None, signing_keys: JwksFetcher | None = None
) -> FastAPI:
    runtime = build_runtime(settings or Settings(), signing_keys)
    return create_http_app(
        runtime,
        routers=[router],
        title="Card",
        description="Student cards: issue, numbering, collection slots, collection.",
    )
