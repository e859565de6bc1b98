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

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Scope

from opr_shared import collector, eventloop
from opr_shared.devstack.proxy import Proxy
from opr_shared.devstack.stack import DEFAULT_SERVICE_PORTS, service_port_env

# /readyz asks each service's own /readyz; a service that takes longer is not ready.
READY_TIMEOUT = 2.0


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
    """The gateway's own pages: the API index, liveness and readiness."""

    def __init__(self, services: Mapping[str, str], client: httpx.AsyncClient | None = None):
        self.services = {name: url.rstrip("/") for name, url in services.items()}
        self._client = client

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False, timeout=READY_TIMEOUT)
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
                response = await self.client.get(f"{url}/readyz")
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


def create_app(services: Mapping[str, str], *, portal_dir: Path | None = None) -> ASGIApp:
    """The gateway application.

    ``/api/<service>/...`` goes to the service (:class:`~opr_shared.devstack.proxy.Proxy`);
    ``/api/`` always lists the services and their API docs; ``/`` is the portal when
    ``portal_dir`` (its built files) is given, and that list otherwise.
    """
    gateway = Gateway(services)
    proxy: Proxy

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            proxy.close()
            await gateway.aclose()

    routes: list[BaseRoute] = [
        Route("/healthz", gateway.healthz, methods=["GET"]),
        Route("/readyz", gateway.readyz, methods=["GET"]),
        Route("/api", gateway.index, methods=["GET"]),
        Route("/api/", gateway.index, methods=["GET"]),
    ]
    if portal_dir is not None:
        routes.append(Mount("/", app=PortalFiles(directory=portal_dir, html=True), name="portal"))
    else:
        routes.append(Route("/", gateway.index, methods=["GET"]))
    pages = Starlette(routes=routes, lifespan=lifespan)
    pages.state.gateway = gateway
    proxy = Proxy(pages, gateway.services)
    return proxy


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
