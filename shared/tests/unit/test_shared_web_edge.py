"""The shared HTTP edge: body limits (413 with a reason) and request context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
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
