"""The HTTP edge every service shares, as plain ASGI middleware.

- :class:`RequestContext` gives each request a correlation id (the caller's, or a
  new one), echoes it in the answer and counts the request and its latency by
  route and status. Given an audit sink, it also records every request by staff
  that could change something (any method but GET, HEAD and OPTIONS): who, with
  which role, what (method, route, path), the answer's status, when, and the
  correlation id that ties it to the logs and the events it caused. Refusals are
  recorded too. Bodies are not: they carry personal data the records already
  hold.
- :class:`BodyLimit` refuses a request body larger than its route takes with
  413 and a reason; the route never gets more than its limit: a 4 MB sign-in is
  refused, not parsed. Routes that take large bodies name their own limit;
  routes that stream and cap a body themselves (uploads) are exempt.

Both are plain ASGI rather than ``@app.middleware("http")``: that decorator runs
every request through an extra task and stream wrappers, a cost paid on every
call of every service. FastAPI's own ``max_body_size`` is not used: its refusal
says only "Content Too Large", and a route's own limit is fixed where the route
is declared, while these limits come from each service's settings at start-up.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opr_shared.auth import PRINCIPAL_SCOPE_KEY, Principal
from opr_shared.jsonlog import correlation_id_var

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency", ["service", "method", "route"]
)
CORRELATION_HEADER = "X-Correlation-ID"
_CORRELATION_KEY = CORRELATION_HEADER.lower().encode()

AuditSink = Callable[[dict[str, Any]], Awaitable[None]]
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# How much of a refused body is read and dropped so the answer reaches a proxy
# that is still sending it (the Ingress takes at most 12 MB).
DRAIN_BYTES = 16 * 1024 * 1024

# What a route takes when it says nothing: far above any form or staff action,
# far below what would hurt a service to hold in memory.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


class RequestContext:
    """Correlation id, request count and latency for every HTTP request; staff
    requests that may change something go to ``audit``."""

    def __init__(self, app: ASGIApp, *, service: str, audit: AuditSink | None = None) -> None:
        self.app = app
        self.service = service
        self.audit = audit

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
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope.get("method", "?")
            HTTP_REQUESTS.labels(self.service, method, path, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, path).observe(time.perf_counter() - started)
            principal = scope.get(PRINCIPAL_SCOPE_KEY)
            if (
                self.audit is not None
                and isinstance(principal, Principal)
                and principal.is_staff
                and method not in READ_ONLY_METHODS
            ):
                await self._record(
                    self.audit,
                    {
                        "at": datetime.now(UTC),
                        "service": self.service,
                        "actor": principal.subject,
                        "role": principal.role.value,
                        "method": method,
                        "route": path,
                        "path": scope.get("path", ""),
                        "status": status,
                        "correlation_id": correlation_id,
                    },
                )
            correlation_id_var.reset(token)

    @staticmethod
    async def _record(audit: AuditSink, entry: dict[str, Any]) -> None:
        try:
            await audit(entry)
        except Exception:
            # The answer has gone; the log line keeps the record instead.
            log.exception(
                "staff action not written to the audit trail",
                extra={key: str(value) for key, value in entry.items()},
            )


class BodyLimit:
    """Refuse request bodies above the route's limit with 413 and a reason.

    ``limits`` maps a path (as the request names it, prefix included) to that
    route's limit in bytes, or to ``None`` for a route that streams and caps its
    body itself; every other path gets ``default``. A declared Content-Length
    over the limit is refused before the route sees anything; a body sent without
    one is counted as it arrives and refused once it passes the limit.

    A refused body is read to its end and dropped (never held) before the answer,
    up to ``drain`` bytes: a proxy still sending it would otherwise see the
    connection close under it and answer 502 instead of this 413. Beyond that
    the answer goes at once and the connection is closed.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        default: int = DEFAULT_MAX_BODY_BYTES,
        limits: Mapping[str, int | None] | None = None,
        drain: int = DRAIN_BYTES,
    ) -> None:
        self.app = app
        self.default = default
        self.limits = dict(limits or {})
        self.drain = drain

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
            drained = int(declared) <= self.drain and await _drain(receive, 0, self.drain)
            await _refuse(send, limit, close=not drained)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if message.get("more_body", False):
                        await _drain(receive, received, self.drain)
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


async def _drain(receive: Receive, received: int, budget: int) -> bool:
    """Read the rest of a request body and drop it; False if it passes ``budget``
    bytes in all or the client goes away first."""
    while received <= budget:
        message = await receive()
        if message["type"] != "http.request":
            return False
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            return received <= budget
    return False


async def _refuse(send: Send, limit: int, *, close: bool = False) -> None:
    body = json.dumps({"detail": _reason(limit)}).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
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
