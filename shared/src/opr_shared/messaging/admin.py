"""Every service's dead letters over HTTP, for administrators:
``GET /api/<service>/admin/dead-letters`` and ``POST .../dead-letters/replay``."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from opr_shared.auth import Principal, Role, require_roles
from opr_shared.messaging.deadletters import read_dead_letters, replay_dead_letters

log = logging.getLogger(__name__)
admin_only = require_roles(Role.ADMIN)


class DeadLetterOut(BaseModel):
    id: str = Field(description="partition:offset in the dead-letter topic")
    source_topic: str
    source_partition: int
    source_offset: int
    event_type: str | None
    event_id: str | None
    error: str
    attempts: int
    failed_at: str


class ReplayIn(BaseModel):
    ids: list[str] | None = Field(
        default=None, description="Replay only these dead letters; omit to replay all."
    )


class ReplayOut(BaseModel):
    outcomes: dict[str, int] = Field(
        description="How many were handled, duplicates, skipped, failed again or replayed before."
    )


def dead_letter_router() -> APIRouter:
    router = APIRouter(prefix="/admin/dead-letters", tags=["dead letters"])

    def runtime_of(request: Request) -> Any:
        return request.app.state.runtime

    @router.get("", response_model=list[DeadLetterOut])
    async def list_dead_letters(
        request: Request, _: Annotated[Principal, Depends(admin_only)]
    ) -> list[DeadLetterOut]:
        runtime = runtime_of(request)
        letters = await read_dead_letters(
            runtime.settings.kafka_bootstrap_servers, runtime.service, options=runtime.kafka_options
        )
        return [DeadLetterOut(**d.summary()) for d in letters]

    @router.post("/replay", response_model=ReplayOut)
    async def replay(
        request: Request,
        principal: Annotated[Principal, Depends(admin_only)],
        body: ReplayIn | None = None,
    ) -> ReplayOut:
        runtime = runtime_of(request)
        outcomes = await replay_dead_letters(
            runtime.consumer,
            runtime.settings.kafka_bootstrap_servers,
            only=set(body.ids) if body and body.ids else None,
            options=runtime.kafka_options,
        )
        log.info(
            "dead letters replayed",
            extra={"by": principal.subject, "ids": body.ids if body else None, **outcomes},
        )
        return ReplayOut(outcomes=outcomes)

    return router
