"""Reading a roster body: hostile JSON is a 400 with a reason, never a 500."""

from __future__ import annotations

import pytest
from fastapi import HTTPException
from identity.api.routes import _roster_rows
from starlette.requests import Request


def request_with(body: bytes, content_type: bytes = b"application/json") -> Request:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "POST", "headers": [(b"content-type", content_type)]}
    return Request(scope, receive)


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'[{"a":' * 50_000 + b"1" + b"}]" * 50_000],
    ids=["nested arrays", "nested objects"],
)
async def test_a_roster_nested_thousands_deep_is_refused_with_a_reason(body: bytes) -> None:
    with pytest.raises(HTTPException) as refused:
        await _roster_rows(request_with(body), max_rows=10)
    assert refused.value.status_code == 400
    assert "nested too deeply" in str(refused.value.detail)


async def test_a_plain_roster_is_read() -> None:
    rows = await _roster_rows(request_with(b'[{"student_no": "20270001"}]'), max_rows=10)
    assert rows == [{"student_no": "20270001"}]
