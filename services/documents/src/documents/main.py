"""Composition root of the documents service."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from opr_shared.auth import JwksFetcher
from opr_shared.runtime import ServiceRuntime, Worker, create_http_app
from opr_shared.settings import ServiceSettings

from documents import messaging
from documents.api.budget import UploadBudget
from documents.api.routes import UploadRules, build_router
from documents.domain.content import ContentLimits
from documents.domain.photo import PhotoSpec
from documents.handlers.orphans import OrphanSweeper
from documents.settings import Settings
from documents.store import INDEXES


def build_runtime(
    settings: ServiceSettings, signing_keys: JwksFetcher | None = None
) -> ServiceRuntime:
    own = settings if isinstance(settings, Settings) else Settings()

    def workers(runtime: ServiceRuntime) -> list[Worker]:
        if not own.orphan_sweep_seconds or runtime.objects is None:
            return []
        return [
            OrphanSweeper(
                runtime.db,
                runtime.objects,
                every_seconds=own.orphan_sweep_seconds,
                grace=timedelta(seconds=own.orphan_grace_seconds),
            )
        ]

    return ServiceRuntime(
        settings,
        subscriptions=messaging.subscriptions(),
        indexes=INDEXES,
        uses_bucket=True,
        signing_keys=signing_keys,
        workers=workers,
    )


def upload_rules(settings: Settings) -> UploadRules:
    spec = PhotoSpec(max_bytes=settings.max_photo_bytes)
    return UploadRules(
        document_limits=ContentLimits(
            max_bytes=settings.max_document_bytes,
            max_pixels=settings.max_image_pixels,
            max_pdf_pages=settings.max_pdf_pages,
        ),
        photo_limits=ContentLimits(
            max_bytes=settings.max_photo_bytes, max_pixels=settings.max_image_pixels
        ),
        photo_spec=spec,
        link_ttl=timedelta(seconds=settings.content_link_seconds),
        budget=UploadBudget(
            settings.upload_budget_bytes,
            settings.upload_wait_seconds,
            max_waiting=settings.upload_max_waiting,
        ),
    )


def create_app(
    settings: ServiceSettings | None = None, signing_keys: JwksFetcher | None = None
) -> FastAPI:
    own = settings if isinstance(settings, Settings) else Settings()
    runtime = build_runtime(settings or own, signing_keys)
    return create_http_app(
        runtime,
        routers=[build_router(upload_rules(own))],
        title="Documents",
        description="Identity and visa documents, card photos, content checks and verification.",
        # Uploads stream their multipart body and stop at the file limit themselves.
        body_limits={"/me/documents": None, "/me/photo": None},
    )
