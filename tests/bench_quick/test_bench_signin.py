"""The bench's users sign in again when their access token runs out (a 401), as
people do in the portal; long runs and paused students outlive 15-minute tokens."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


def driver() -> Any:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("bench.driver")


def gateway(valid: set[str], seen: list[str]) -> httpx.AsyncClient:
    def answer(request: httpx.Request) -> httpx.Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        seen.append(token)
        return httpx.Response(200 if token in valid else 401, json={})

    return httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://gw")


async def test_an_expired_token_is_renewed_and_the_request_repeated_once() -> None:
    bench = driver()
    seen: list[str] = []
    sign_ins: list[str] = []

    async def sign_in(_client: httpx.AsyncClient) -> str:
        sign_ins.append("again")
        return "fresh"

    async with gateway({"fresh"}, seen) as client:
        http = bench.Http(client)
        me = bench.Signed("expired", sign_in)
        first = await http.call("GET", "GET /me", "/me", auth=me)
        second = await http.call("GET", "GET /me", "/me", auth=me)

    assert first.status_code == 200
    assert second.status_code == 200
    assert seen == ["expired", "fresh", "fresh"]
    assert sign_ins == ["again"]
    assert dict(http.statuses["GET /me"]) == {401: 1, 200: 2}


async def test_a_refused_sign_in_is_answered_not_retried_forever() -> None:
    bench = driver()
    seen: list[str] = []

    async def sign_in(_client: httpx.AsyncClient) -> str:
        return "still-wrong"

    async with gateway(set(), seen) as client:
        http = bench.Http(client)
        answer = await http.call("GET", "GET /me", "/me", auth=bench.Signed("old", sign_in))
        anonymous = await http.call("GET", "GET /me", "/me")

    assert answer.status_code == 401
    assert anonymous.status_code == 401
    assert seen == ["old", "still-wrong", ""]
