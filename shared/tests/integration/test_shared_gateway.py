"""The local gateway, run as its own process in front of a small FastAPI app.

The upstream app stands in for a service: it echoes what it received, counts
and hashes bodies, and streams answers on demand, so each test can tell
whether the gateway forwarded the request unchanged and streamed both ways.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from opr_shared.localinfra import ManagedProcess, free_port, http_ok_probe

pytestmark = pytest.mark.integration


@dataclass
class Upstream:
    url: str
    release_stream: threading.Event = field(default_factory=threading.Event)


def _upstream_app(state: Upstream) -> FastAPI:
    app = FastAPI(docs_url="/api/echo/docs", openapi_url="/api/echo/openapi.json")

    @app.api_route(
        "/api/echo/request/{rest:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    async def echo(request: Request, rest: str) -> JSONResponse:
        body = await request.body()
        return JSONResponse(
            {
                "method": request.method,
                "raw_path": request.scope["raw_path"].decode(),
                "query": request.scope["query_string"].decode(),
                "headers": {k: v for k, v in request.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
        )

    @app.post("/api/echo/upload")
    async def upload(request: Request) -> dict[str, object]:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
        return {
            "size": size,
            "sha256": digest.hexdigest(),
            "transfer_encoding": request.headers.get("transfer-encoding"),
        }

    @app.get("/api/echo/download/{size}")
    async def download(size: int) -> Response:
        return Response(_blob(size), media_type="application/octet-stream")

    @app.get("/api/echo/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first\n"
            # The rest is produced only once the client has seen the first chunk.
            released = await asyncio.to_thread(state.release_stream.wait, 20)
            yield b"second\n" if released else b"timeout\n"

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.post("/api/echo/created")
    async def created() -> Response:
        response = JSONResponse({"id": "42"}, status_code=201)
        response.headers["Location"] = "/api/echo/things/42"
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        return response

    @app.get("/api/echo/moved")
    async def moved() -> RedirectResponse:
        return RedirectResponse("/api/echo/request/target", status_code=302)

    @app.get("/api/echo/slow-fail")
    async def fail() -> JSONResponse:
        return JSONResponse({"detail": "validation failed"}, status_code=422)

    @app.get("/api/echo/peer")
    async def peer(request: Request) -> dict[str, int]:
        assert request.client is not None
        return {"port": request.client.port}

    @app.post("/api/echo/refuse")
    async def refuse() -> JSONResponse:
        # Answers at once, the body unread (as a service refusing a token does).
        return JSONResponse({"detail": "not signed in"}, status_code=401)

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app


def _blob(size: int) -> bytes:
    pattern = hashlib.sha256(str(size).encode()).digest()
    return (pattern * (size // len(pattern) + 1))[:size]


@contextmanager
def serving(app: FastAPI, port: int) -> Iterator[None]:
    """``app`` served on ``port`` from a thread, until the block ends."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        proxy_headers=False,  # request.client is the gateway's end of the connection
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the upstream test app did not start")
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def gateway_process(work: Path, *services: str, portal: Path | None = None) -> Iterator[str]:
    """A gateway process routing ``name=url`` services (and serving ``portal``); its URL."""
    port = free_port()
    proc = ManagedProcess(
        "gateway",
        [sys.executable, "-m", "opr_shared.devstack.gateway", "--port", str(port)]
        + [arg for service in services for arg in ("--service", service)]
        + (["--portal-dir", str(portal)] if portal else []),
        log_path=work / "gateway.log",
        pid_path=work / "gateway.pid",
        probe=lambda: http_ok_probe(f"http://127.0.0.1:{port}/healthz"),
        port=port,
        ready_timeout=30,
    )
    proc.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    port = free_port()
    state = Upstream(url=f"http://127.0.0.1:{port}")
    with serving(_upstream_app(state), port):
        yield state


@pytest.fixture(scope="module")
def gateway(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway process routing ``echo`` to the app and ``down`` to a closed port."""
    work = tmp_path_factory.mktemp("gateway")
    with gateway_process(
        work, f"echo={upstream.url}", f"down=http://127.0.0.1:{free_port()}"
    ) as url:
        yield url


@pytest.fixture
async def client(gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway, trust_env=False, timeout=30) as c:
        yield c


async def test_path_query_method_headers_and_body_arrive_unchanged(
    client: httpx.AsyncClient,
) -> None:
    response = await client.put(
        "/api/echo/request/items/a%2Fb/%E4%B8%AD?x=1&y=a%20b&y=2",
        content=b'{"name": "Chan Tai Man"}',
        headers={
            "Authorization": "Bearer token-123",
            "X-Correlation-Id": "corr-1",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 200
    seen = response.json()
    assert seen["method"] == "PUT"
    assert seen["raw_path"] == "/api/echo/request/items/a%2Fb/%E4%B8%AD"
    assert seen["query"] == "x=1&y=a%20b&y=2"
    assert seen["body"] == '{"name": "Chan Tai Man"}'
    headers = seen["headers"]
    assert headers["authorization"] == "Bearer token-123"
    assert headers["x-correlation-id"] == "corr-1"
    assert headers["content-type"] == "application/json"
    assert headers["host"] == client.base_url.netloc.decode()
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
async def test_every_method_is_forwarded(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, "/api/echo/request/m")
    assert response.status_code == 200
    assert response.json()["method"] == method


async def test_a_method_no_service_answers_is_refused_with_the_allowed_ones(
    client: httpx.AsyncClient,
) -> None:
    response = await client.request("TRACE", "/api/echo/request/m")
    assert response.status_code == 405
    assert "TRACE" in response.json()["detail"]
    assert "POST" in response.headers["allow"]


async def test_a_large_upload_is_streamed_through_intact(client: httpx.AsyncClient) -> None:
    blob = _blob(8 * 1024 * 1024 + 17)
    response = await client.post("/api/echo/upload", content=blob)
    assert response.json()["size"] == len(blob)
    assert response.json()["sha256"] == hashlib.sha256(blob).hexdigest()


async def test_a_chunked_upload_without_length_is_streamed_through(
    client: httpx.AsyncClient,
) -> None:
    parts = [_blob(100_000 + i) for i in range(5)]

    async def body() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    response = await client.post("/api/echo/upload", content=body())
    joined = b"".join(parts)
    assert response.json()["size"] == len(joined)
    assert response.json()["sha256"] == hashlib.sha256(joined).hexdigest()
    assert response.json()["transfer_encoding"] == "chunked"


async def test_a_large_download_arrives_intact(client: httpx.AsyncClient) -> None:
    size = 12 * 1024 * 1024 + 5
    response = await client.get(f"/api/echo/download/{size}")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(size)
    assert response.content == _blob(size)


async def test_responses_are_streamed_not_buffered(
    client: httpx.AsyncClient, upstream: Upstream
) -> None:
    upstream.release_stream.clear()
    async with client.stream("GET", "/api/echo/stream") as response:
        lines = response.aiter_lines()
        # A buffering proxy would hold this until the upstream finished, which
        # it only does after the first line has been seen here.
        first = await asyncio.wait_for(anext(lines), 10)
        assert first == "first"
        upstream.release_stream.set()
        assert await asyncio.wait_for(anext(lines), 10) == "second"


async def test_status_location_and_repeated_headers_pass_through(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/echo/created")
    assert response.status_code == 201
    assert response.headers["location"] == "/api/echo/things/42"
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 2
    assert {c.split(";")[0] for c in cookies} == {"a=1", "b=2"}
    assert len(response.headers.get_list("date")) == 1  # the gateway's, not two


async def test_redirects_and_errors_reach_the_client_as_they_are(
    client: httpx.AsyncClient,
) -> None:
    moved = await client.get("/api/echo/moved")
    assert moved.status_code == 302
    assert moved.headers["location"] == "/api/echo/request/target"
    failed = await client.get("/api/echo/slow-fail")
    assert failed.status_code == 422
    assert failed.json() == {"detail": "validation failed"}


async def test_the_service_docs_are_reached_through_the_gateway(
    client: httpx.AsyncClient,
) -> None:
    docs = await client.get("/api/echo/docs")
    assert docs.status_code == 200
    assert "/api/echo/openapi.json" in docs.text
    spec = await client.get("/api/echo/openapi.json")
    assert spec.status_code == 200
    assert "/api/echo/upload" in spec.json()["paths"]


async def test_connections_to_a_service_are_kept_and_used_again(
    client: httpx.AsyncClient,
) -> None:
    ports = [(await client.get("/api/echo/peer")).json()["port"] for _ in range(20)]
    # One after another: the gateway's connection to the service serves them all.
    assert len(set(ports)) <= 2, ports


async def test_an_answer_given_before_the_upload_is_read_reaches_the_client(
    client: httpx.AsyncClient,
) -> None:
    refused = await client.post("/api/echo/refuse", content=_blob(8 * 1024 * 1024))
    assert refused.status_code == 401
    assert refused.json() == {"detail": "not signed in"}
    # The client's connection, and the gateway's, still serve the next request.
    after = await client.post("/api/echo/upload", content=b"next")
    assert after.json()["size"] == 4


async def test_a_head_request_gets_the_headers_alone(client: httpx.AsyncClient) -> None:
    head = await client.head("/api/echo/docs")
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/html")
    assert head.content == b""
    assert (await client.get("/api/echo/request/after")).status_code == 200


def test_a_restarted_service_is_reached_again(tmp_path: Path) -> None:
    port = free_port()
    with gateway_process(tmp_path, f"echo=http://127.0.0.1:{port}") as url:
        for _ in range(2):  # the second time, the kept connection is to a stopped server
            with serving(_upstream_app(Upstream(url=f"http://127.0.0.1:{port}")), port):
                answer = httpx.post(f"{url}/api/echo/upload", content=b"again", timeout=30)
                assert answer.status_code == 200, answer.text
                assert answer.json()["size"] == 5


async def test_an_unknown_service_is_a_404_with_a_reason(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nosuch/things")
    assert response.status_code == 404
    body = response.json()
    assert "nosuch" in body["detail"]
    assert body["known_services"] == ["down", "echo"]


async def test_a_service_that_is_down_is_a_503_with_a_reason(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/down/anything", content=b"x")
    assert response.status_code == 503
    assert "down" in response.json()["detail"]


async def test_the_index_page_links_each_service_docs(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'href="/api/echo/docs"' in response.text
    assert 'href="/api/down/docs"' in response.text


async def test_readyz_reports_each_service(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["services"]["echo"] == "ready"
    assert response.json()["services"]["down"].startswith("unreachable")


def test_the_gateway_serves_a_portal_folder_when_given_one(
    upstream: Upstream, tmp_path: Path
) -> None:
    (tmp_path / "index.html").write_text("<h1>Portal</h1>")
    with (
        gateway_process(tmp_path, f"echo={upstream.url}", portal=tmp_path) as url,
        httpx.Client(base_url=url, trust_env=False) as c,
    ):
        assert "<h1>Portal</h1>" in c.get("/").text
        assert c.get("/api/echo/request/x").json()["raw_path"] == "/api/echo/request/x"
