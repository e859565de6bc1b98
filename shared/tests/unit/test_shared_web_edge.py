"""The shared HTTP edge: body limits (413 with a reason), request context and the
staff audit trail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from opr_shared.auth import (
    KeySet,
    Principal,
    Role,
    TokenVerifier,
    current_student,
    require_roles,
)
from opr_shared.testing.service import TestSigner
from opr_shared.web import CORRELATION_HEADER, HTTP_REQUESTS, BodyLimit, RequestContext
from pydantic import BaseModel

LIMIT = 2048


class Login(BaseModel):
    email: str
    password: str


def make_app(seen: list[int]) -> FastAPI:
    app = FastAPI()

    @app.post("/api/svc/sessions")
    async def sign_in(body: Login) -> dict[str, Any]:
        seen.append(len(body.email))
        return {"email_length": len(body.email)}

    @app.post("/api/svc/import")
    async def import_rows(request: Request) -> dict[str, int]:
        raw = await request.body()
        seen.append(len(raw))
        return {"bytes": len(raw)}

    @app.post("/api/svc/upload")
    async def upload(request: Request) -> dict[str, int]:
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
        seen.append(total)
        return {"bytes": total}

    app.add_middleware(
        BodyLimit,
        default=LIMIT,
        limits={"/api/svc/import": 4 * LIMIT, "/api/svc/upload": None},
    )
    app.add_middleware(RequestContext, service="edge-test")
    return app


@pytest.fixture
def seen() -> list[int]:
    return []


@pytest.fixture
async def client(seen: list[int]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(seen))
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as c:
        yield c


async def chunks(total: int, size: int = 512) -> AsyncIterator[bytes]:
    """A JSON body of ``total`` bytes sent without a Content-Length."""
    body = ('{"email": "' + "x" * (total - 30) + '", "password": "p"}').encode()
    for i in range(0, len(body), size):
        yield body[i : i + size]


async def test_a_body_within_the_limit_reaches_the_route(
    client: httpx.AsyncClient, seen: list[int]
) -> None:
    answer = await client.post("/api/svc/sessions", json={"email": "a@b.c", "password": "p"})
    assert answer.status_code == 200
    assert seen == [5]


async def test_a_declared_length_over_the_limit_is_refused_before_the_route(
    client: httpx.AsyncClient, seen: list[int]
) -> None:
    answer = await client.post(
        "/api/svc/sessions", json={"email": "x" * (LIMIT + 10), "password": "p"}
    )
    assert answer.status_code == 413
    assert str(LIMIT) in answer.json()["detail"]
    assert seen == []


async def test_a_streamed_body_is_refused_once_it_passes_the_limit(
    client: httpx.AsyncClient, seen: list[int]
) -> None:
    answer = await client.post(
        "/api/svc/sessions",
        content=chunks(LIMIT * 3),
        headers={"content-type": "application/json"},
    )
    assert "content-length" not in answer.request.headers
    assert answer.status_code == 413, answer.text
    assert "larger than this route takes" in answer.json()["detail"]
    assert seen == []


async def test_a_streamed_body_within_the_limit_is_read_whole(
    client: httpx.AsyncClient, seen: list[int]
) -> None:
    answer = await client.post(
        "/api/svc/sessions",
        content=chunks(LIMIT - 100),
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    assert seen == [LIMIT - 130]


async def test_a_route_with_its_own_limit_takes_more_and_no_more(
    client: httpx.AsyncClient, seen: list[int]
) -> None:
    fits = await client.post("/api/svc/import", content=b"r" * (3 * LIMIT))
    assert fits.status_code == 200
    assert fits.json() == {"bytes": 3 * LIMIT}
    streamed = await client.post("/api/svc/import", content=chunks(5 * LIMIT))
    assert streamed.status_code == 413
    assert str(4 * LIMIT) in streamed.json()["detail"]
    assert seen == [3 * LIMIT]


async def test_a_route_that_caps_its_own_body_is_left_alone(
    client: httpx.AsyncClient, seen: list[int]
) -> None:
    answer = await client.post("/api/svc/upload", content=b"u" * (10 * LIMIT))
    assert answer.status_code == 200
    assert seen == [10 * LIMIT]


async def test_the_correlation_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    mine = await client.post(
        "/api/svc/sessions",
        json={"email": "a", "password": "p"},
        headers={CORRELATION_HEADER: "trace-42"},
    )
    assert mine.headers[CORRELATION_HEADER] == "trace-42"
    made = await client.post("/api/svc/sessions", json={"email": "a", "password": "p"})
    assert len(made.headers[CORRELATION_HEADER]) == 36
    too_long = await client.post(
        "/api/svc/sessions",
        json={"email": "a", "password": "p"},
        headers={CORRELATION_HEADER: "t" * 200},
    )
    assert too_long.headers[CORRELATION_HEADER] != "t" * 200
    # A refusal for size carries one too.
    refused = await client.post("/api/svc/sessions", content=b"x" * (LIMIT + 1))
    assert refused.status_code == 413
    assert refused.headers[CORRELATION_HEADER]


def _count(route: str, status: str) -> float:
    value = HTTP_REQUESTS.labels("edge-test", "POST", route, status)._value.get()
    return float(value)


async def test_requests_are_counted_by_route_and_status(client: httpx.AsyncClient) -> None:
    ok_before = _count("/api/svc/sessions", "200")
    refused_before = _count("unmatched", "413")
    await client.post("/api/svc/sessions", json={"email": "a", "password": "p"})
    await client.post("/api/svc/sessions", content=b"x" * (LIMIT + 1))
    assert _count("/api/svc/sessions", "200") == ok_before + 1
    # Refused before routing: no route is known yet.
    assert _count("unmatched", "413") == refused_before + 1


# --- the staff audit trail ------------------------------------------------------

SIGNER = TestSigner()
# Module level: the route annotations below are resolved in this module's names.
OFFICER = require_roles(Role.REGISTRY_OFFICER, Role.ADMIN)


def audited_app(trail: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()
    app.state.token_verifier = TokenVerifier(KeySet(SIGNER.jwks))

    @app.post("/api/svc/documents/{document_id}/verify")
    async def verify(
        document_id: str, who: Annotated[Principal, Depends(OFFICER)]
    ) -> dict[str, str]:
        if document_id == "missing":
            raise HTTPException(404, "no such document")
        return {"verified": document_id}

    @app.get("/api/svc/queue")
    async def queue(who: Annotated[Principal, Depends(OFFICER)]) -> list[str]:
        return []

    @app.post("/api/svc/me/form")
    async def own_form(who: Annotated[Principal, Depends(current_student)]) -> dict[str, str]:
        return {"saved": "yes"}

    async def sink(entry: dict[str, Any]) -> None:
        trail.append(entry)

    app.add_middleware(RequestContext, service="svc", audit=sink)
    return app


async def test_staff_actions_are_recorded_with_who_what_and_the_outcome() -> None:
    trail: list[dict[str, Any]] = []
    transport = httpx.ASGITransport(app=audited_app(trail))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        officer = SIGNER.headers(Role.REGISTRY_OFFICER)
        done = await client.post(
            "/api/svc/documents/d-1/verify", headers={**officer, CORRELATION_HEADER: "c-42"}
        )
        missing = await client.post("/api/svc/documents/missing/verify", headers=officer)
        refused = await client.post(
            "/api/svc/documents/d-2/verify", headers=SIGNER.headers(Role.CARD_OFFICE)
        )
        # Not recorded: reads, students' own actions, callers without a valid token.
        await client.get("/api/svc/queue", headers=officer)
        await client.post("/api/svc/me/form", headers=SIGNER.headers(Role.STUDENT, "20260001"))
        await client.post("/api/svc/documents/d-3/verify")
    assert (done.status_code, missing.status_code, refused.status_code) == (200, 404, 403)
    assert [(e["actor"], e["role"], e["path"], e["status"]) for e in trail] == [
        ("registry_officer.tester", "registry_officer", "/api/svc/documents/d-1/verify", 200),
        ("registry_officer.tester", "registry_officer", "/api/svc/documents/missing/verify", 404),
        ("card_office.tester", "card_office", "/api/svc/documents/d-2/verify", 403),
    ]
    first = trail[0]
    assert first["route"] == "/api/svc/documents/{document_id}/verify"
    assert first["method"] == "POST"
    assert first["service"] == "svc"
    assert first["correlation_id"] == "c-42"
    assert first["at"].tzinfo is not None


async def test_an_audit_that_cannot_be_written_does_not_fail_the_action(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = audited_app([])

    async def broken(entry: dict[str, Any]) -> None:
        raise ConnectionError("database away")

    app.user_middleware.clear()
    app.add_middleware(RequestContext, service="svc", audit=broken)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        answer = await client.post(
            "/api/svc/documents/d-1/verify", headers=SIGNER.headers(Role.ADMIN)
        )
    assert answer.status_code == 200
    assert "staff action not written to the audit trail" in caplog.text


async def run_refusal(declared: int | None, chunks: int, drain: int) -> tuple[int, list[Any]]:
    """Feed BodyLimit a body of ``chunks`` chunks of 1 KiB; answer how many it read
    and what it sent."""
    read = 0
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": b"x" * 1024, "more_body": read < chunks}

    async def send(message: Any) -> None:
        sent.append(message)

    async def route(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        raise AssertionError("the route must not get the whole body")

    headers = [(b"content-length", str(declared).encode())] if declared is not None else []
    scope = {"type": "http", "method": "POST", "path": "/api/svc/x", "headers": headers}
    limit = BodyLimit(route, default=4 * 1024, drain=drain)
    await limit(scope, receive, send)
    return read, sent


async def test_a_refused_body_is_read_to_its_end_before_the_answer() -> None:
    # Declared 20 KiB against 4 KiB: all 20 chunks read and dropped, then 413.
    read, sent = await run_refusal(20 * 1024, 20, drain=64 * 1024)
    assert read == 20
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") not in sent[0]["headers"]
    # Streamed without a length: drained after passing the limit too.
    read, _ = await run_refusal(None, 20, drain=64 * 1024)
    assert read == 20


async def test_a_body_beyond_what_is_drained_gets_the_answer_at_once_and_a_close() -> None:
    read, sent = await run_refusal(200 * 1024, 200, drain=64 * 1024)
    assert read == 0
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]
    read, _ = await run_refusal(None, 200, drain=64 * 1024)
    assert read < 70  # stopped once past the budget
