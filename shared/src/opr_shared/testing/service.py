"""One service in-process against the real servers, for a service's integration tests.

- :class:`TestSigner`: a signing key of the tests' own, its JWKS, and bearer
  headers for any role (the service under test trusts only this key);
- :func:`isolated_settings`: the service's settings over the session's servers,
  with a database, bucket and consumer group no other test uses;
- :func:`serve_in_process`: indexes and bucket created, an HTTP client on the
  app (no network), the database client closed afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from opr_shared.auth import Role, generate_private_key, public_jwk, sign_token
from opr_shared.localinfra import Endpoints
from opr_shared.runtime import ServiceRuntime
from opr_shared.settings import ServiceSettings
from opr_shared.store.mongo import ensure_indexes

S = TypeVar("S", bound=ServiceSettings)


class TestSigner:
    """Signs tokens the way identity does, with a key only the tests hold."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, kid: str = "test-key") -> None:
        self.kid = kid
        self.key = generate_private_key()

    async def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.key, self.kid)]}

    def token(self, role: Role, student_no: str | None = None, ttl_seconds: int = 600) -> str:
        return sign_token(
            self.key,
            self.kid,
            subject=student_no or f"{role.value}.tester",
            role=role,
            ttl_seconds=ttl_seconds,
            student_no=student_no,
        )

    def headers(self, role: Role, student_no: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, student_no)}"}


def isolated_settings(settings_class: type[S], infra: Endpoints, **overrides: Any) -> S:
    """Settings whose database, bucket and consumer group are this test's alone."""
    name = settings_class.model_fields["service_name"].default
    suffix = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "environment": "test",
        "mongodb_uri": infra.mongodb_uri,
        "mongodb_database": f"{name}_{suffix}",
        "s3_endpoint": infra.s3_endpoint,
        "s3_access_key": infra.s3_access_key,
        "s3_secret_key": infra.s3_secret_key,
        "s3_bucket": f"{name}-{suffix}",
        "kafka_bootstrap_servers": infra.kafka_bootstrap,
        "kafka_group_id": f"{name}-{suffix}",
        **overrides,
    }
    return settings_class(**values)


@asynccontextmanager
async def serve_in_process(app: FastAPI, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app's indexes and bucket, and an HTTP client calling it in-process.

    The app's lifespan is not run: no consumer or relay starts, so a test feeds
    events to the handlers itself and reads the outbox.
    """
    runtime: ServiceRuntime = app.state.runtime
    await ensure_indexes(runtime.db, runtime.indexes)
    if runtime.objects is not None:
        await runtime.objects.ensure_bucket()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=base_url
        ) as client:
            yield client
    finally:
        await runtime.mongo.close()
