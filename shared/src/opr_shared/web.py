"""The HTTP edge every service shares, as plain ASGI middleware.

- :class:`RequestContext` gives each request a correlation id (the caller's, or a
  new one), echoes it in the answer and counts the request and its latency by
  route and status.
- :class:`BodyLimit` refuses a request body larger than its route takes with
  413 and a reason, before the route has read more than the limit: a 4 MB
  sign-in is refused, not parsed. Routes that take large bodies name their own
  limit; routes that stream and cap a body themselves (uploads) are exempt.

Both are plain ASGI rather than ``@app.middleware("http")``: that decorator runs
every request through an extra task and stream wrappers, a cost paid on every
call of every service. FastAPI's own ``max_body_size`` is not used: its refusal
says only "Content Too Large", and a route's own limit is fixed where the route
is declared, while these limits come from each service's settings at start-up.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping

from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opr_shared.jsonlog import correlation_id_var

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency", ["service", "method", "route"]
)
CORRELATION_HEADER = "X-Correlation-ID"
_CORRELATION_KEY = CORRELATION_HEADER.lower().encode()

# What a route takes when it says nothing: far above any form or staff action,
# far below what would hurt a service to hold in memory.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


class RequestContext:
    """Correlation id, request count and latency for every HTTP request."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = (_header(scope, _CORRELATION_KEY) or b"").decode("latin-1")
        correlation_id = incoming if 0 < len(incoming) <= 128 else str(uuid.uuid4())
        echoed = correlation_id.encode("latin-1")
        status = 500  # unless the app starts an answer

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (k, v) for k, v in message.get("headers", ()) if k.lower() != _CORRELATION_KEY
                ]
                headers.append((_CORRELATION_KEY, echoed))
                message = {**message, "headers": headers}
            await send(message)

        token = correlation_id_var.set(correlation_id)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, answer)
        finally:
            correlation_id_var.reset(token)
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope.get("method", "?")
            HTTP_REQUESTS.labels(self.service, method, path, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, path).observe(time.perf_counter() - started)


class BodyLimit:
    """Refuse request bodies above the route's limit with 413 and a reason.

    ``limits`` maps a path (as the request names it, prefix included) to that
    route's limit in bytes, or to ``None`` for a route that streams and caps its
    body itself; every other path gets ``default``. A declared Content-Length
    over the limit is refused before anything is read; a body sent without one
    is counted as it arrives and refused once it passes the limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        default: int = DEFAULT_MAX_BODY_BYTES,
        limits: Mapping[str, int | None] | None = None,
    ) -> None:
        self.app = app
        self.default = default
        self.limits = dict(limits or {})

    def limit_for(self, path: str) -> int | None:
        return self.limits.get(path.rstrip("/") or "/", self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", "/"))
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, limit)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the route's body read: FastAPI passes an
                    # HTTPException raised there on to its handler, which answers.
                    raise HTTPException(413, _reason(limit))
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except HTTPException as exc:
            # Only reached when the app let it through unanswered.
            if exc.status_code != 413 or started:
                raise
            await _refuse(send, limit)


def _reason(limit: int) -> str:
    return f"the request body is larger than this route takes ({limit} bytes)"


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"detail": _reason(limit)}).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def body_limits(prefix: str, routes: Mapping[str, int | None]) -> dict[str, int | None]:
    """Per-route limits named by the route's own path, under the service's prefix."""
    return {f"{prefix}{path}".rstrip("/"): limit for path, limit in routes.items()}


__all__ = [
    "CORRELATION_HEADER",
    "DEFAULT_MAX_BODY_BYTES",
    "BodyLimit",
    "RequestContext",
    "body_limits",
]
