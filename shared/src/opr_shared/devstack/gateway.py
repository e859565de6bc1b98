"""One origin for every HTTP API: the local stand-in for the Kubernetes Ingress.

``/api/<service>/...`` goes unchanged (path, method, query, headers, body
streamed both ways) to that service; ``/`` lists each service's API docs (or
serves the web portal's files when a portal folder is given).

    python -m opr_shared.devstack.gateway --port 8080 \\
        --service identity=http://127.0.0.1:8101 --service card=http://127.0.0.1:8105

Without ``--service``, the routes come from ``OPR_GATEWAY_SERVICES``
(``name=url,name=url``), else from the default service ports
(``OPR_PORT_<SERVICE>`` overriding each).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from opr_shared import collector, eventloop
from opr_shared.devstack.stack import DEFAULT_SERVICE_PORTS, service_port_env

PROXIED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

# Meaningful for one connection only (RFC 9110 section 7.6.1), never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

# The services are on loopback: a stopped one refuses at once (503). A connect that
# takes seconds means this process is busy (a thousand requests arriving together
# left 5 s too short), so wait rather than answer 504.
CONNECT_TIMEOUT = 30.0
READ_TIMEOUT = 300.0


def _forwardable(raw: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    named_in_connection = {
        token.strip().lower()
        for name, value in raw
        if name.lower() == b"connection"
        for token in value.split(b",")
    }
    return [
        (name, value)
        for name, value in raw
        if name.decode("latin-1").lower() not in HOP_BY_HOP
        and name.lower() not in named_in_connection
    ]


def _error(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status)


def _index_page(services: Mapping[str, str]) -> str:
    items = "\n".join(
        f"    <li><strong>{html.escape(name)}</strong>: "
        f'<a href="/api/{html.escape(name)}/docs">/api/{html.escape(name)}/docs</a> '
        f'(<a href="/api/{html.escape(name)}/openapi.json">OpenAPI</a>)</li>'
        for name in services
    )
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Online Program Registration (local)</title></head>
<body>
  <h1>Online Program Registration</h1>
  <p>Local gateway: every API is reached through this origin.</p>
  <h2>API documentation</h2>
  <ul>
{items}
  </ul>
</body>
</html>
"""


class Gateway:
    """Path-routed reverse proxy over a fixed set of services."""

    def __init__(self, services: Mapping[str, str], client: httpx.AsyncClient | None = None):
        self.services = {name: url.rstrip("/") for name, url in services.items()}
        self._client = client

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                trust_env=False,
                follow_redirects=False,
                timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
                # Idle connections are dropped well before the services' 75 s
                # keep-alive ends, so none is reused just as a service closes it.
                # Few idle ones are kept: the pool looks over every connection it
                # holds for each request (500 kept tripled the gateway's CPU).
                limits=httpx.Limits(
                    max_connections=500, max_keepalive_connections=50, keepalive_expiry=30
                ),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def index(self, request: Request) -> Response:
        return HTMLResponse(_index_page(self.services))

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """Ready when every service answers its own ``/readyz`` with 200."""

        async def one(url: str) -> str:
            try:
                response = await self.client.get(f"{url}/readyz", timeout=2.0)
            except httpx.HTTPError as exc:
                return f"unreachable ({type(exc).__name__})"
            return "ready" if response.status_code == 200 else f"not ready ({response.status_code})"

        names = list(self.services)
        states = await asyncio.gather(*(one(self.services[n]) for n in names))
        result = dict(zip(names, states, strict=True))
        ok = all(state == "ready" for state in states)
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "services": result},
            status_code=200 if ok else 503,
        )

    async def proxy(self, request: Request) -> Response:
        service = request.path_params["service"]
        base = self.services.get(service)
        if base is None:
            return _error(
                404,
                f"no service named {service!r} behind this gateway",
                known_services=sorted(self.services),
            )
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        target = base + raw_path.decode("latin-1")
        query = request.scope.get("query_string", b"")
        if query:
            target += "?" + query.decode("latin-1")

        headers = _forwardable(request.headers.raw)
        client_host = request.client.host if request.client else ""
        previous = request.headers.get("x-forwarded-for")
        forwarded = [
            (b"x-forwarded-for", (f"{previous}, {client_host}" if previous else client_host)),
            (b"x-forwarded-proto", request.url.scheme),
            (b"x-forwarded-host", request.headers.get("host", "")),
        ]
        names = {name.lower() for name, _ in forwarded}
        headers = [(n, v) for n, v in headers if n.lower() not in names]
        headers += [(n, v.encode("latin-1")) for n, v in forwarded]

        has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
        upstream_request = self.client.build_request(
            request.method,
            target,
            headers=headers,
            content=request.stream() if has_body else None,
        )
        try:
            upstream = await self.client.send(upstream_request, stream=True)
        except httpx.ConnectError as exc:
            return _error(503, f"service {service!r} is unavailable: {exc or 'connect failed'}")
        except httpx.TimeoutException as exc:
            return _error(504, f"service {service!r} did not answer in time ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return _error(502, f"bad answer from service {service!r}: {type(exc).__name__}: {exc}")

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                await upstream.aclose()

        response = StreamingResponse(
            body(), status_code=upstream.status_code, background=BackgroundTask(upstream.aclose)
        )
        response.raw_headers = _forwardable(upstream.headers.raw)
        return response


class PortalFiles(StaticFiles):
    """The portal's files; any other page path gets ``index.html`` (the portal routes
    in the browser, e.g. the ``/activate?token=...`` link of an invitation)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404 or "." in path.rsplit("/", 1)[-1]:
                raise
            return await super().get_response("index.html", scope)


def create_app(services: Mapping[str, str], *, portal_dir: Path | None = None) -> Starlette:
    """The gateway application.

    ``/api/`` always lists the services and their API docs; ``/`` is the portal when
    ``portal_dir`` (its built files) is given, and that list otherwise.
    """
    gateway = Gateway(services)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await gateway.aclose()

    routes: list[BaseRoute] = [
        Route("/healthz", gateway.healthz, methods=["GET"]),
        Route("/readyz", gateway.readyz, methods=["GET"]),
        Route("/api", gateway.index, methods=["GET"]),
        Route("/api/", gateway.index, methods=["GET"]),
        Route("/api/{service}", gateway.proxy, methods=PROXIED_METHODS),
        Route("/api/{service}/{path:path}", gateway.proxy, methods=PROXIED_METHODS),
    ]
    if portal_dir is not None:
        routes.append(Mount("/", app=PortalFiles(directory=portal_dir, html=True), name="portal"))
    else:
        routes.append(Route("/", gateway.index, methods=["GET"]))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.gateway = gateway
    return app


def parse_services(items: Sequence[str]) -> dict[str, str]:
    """``name=url`` items (also comma-separated) into a mapping."""
    services: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, url = part.partition("=")
            if not sep or not name.strip() or not url.strip():
                raise ValueError(f"expected name=url, got {part!r}")
            services[name.strip()] = url.strip()
    return services


def services_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    listed = env.get("OPR_GATEWAY_SERVICES", "").strip()
    if listed:
        return parse_services([listed])
    result: dict[str, str] = {}
    for name, default in DEFAULT_SERVICE_PORTS.items():
        port = env.get(service_port_env(name)) or str(default)
        result[name] = f"http://127.0.0.1:{port}"
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m opr_shared.devstack.gateway", description="Local single-origin gateway."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--service", action="append", default=[], metavar="NAME=URL", help="repeatable"
    )
    parser.add_argument("--portal-dir", type=Path, default=None)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    try:
        services = parse_services(args.service) if args.service else services_from_env()
    except ValueError as exc:
        parser.error(str(exc))
    portal = args.portal_dir if args.portal_dir and args.portal_dir.is_dir() else None
    app = create_app(services, portal_dir=portal)
    collector.settle()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=75,  # longer than clients keep idle connections (see above)
        loop=eventloop.LOOP,
        http=eventloop.HTTP,
    )


if __name__ == "__main__":
    main()
