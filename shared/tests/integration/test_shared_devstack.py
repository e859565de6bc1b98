"""The stack launcher, driven with stand-in services (small FastAPI apps).

What is checked here is the launcher's own contract: the environment each
service gets, readiness, the gateway in front, crash and restart, failure
reporting, and that a second launcher (another ``make`` command) finds and
stops what the first one started.
"""

from __future__ import annotations

import io
import signal
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import pytest
from minio import Minio
from opr_shared.devstack import GATEWAY, Stack, StackPorts
from opr_shared.localinfra import Endpoints, InfraError, NotReadyError, port_in_use

pytestmark = pytest.mark.integration

FAKE_SERVICE = textwrap.dedent(
    """
    import os
    import sys

    import uvicorn
    from fastapi import FastAPI

    name = sys.argv[1]
    if os.environ.get("FAKE_FAIL"):
        print(f"{name}: refusing to start: {os.environ['FAKE_FAIL']}", flush=True)
        sys.exit(2)
    app = FastAPI(docs_url=f"/api/{name}/docs", openapi_url=f"/api/{name}/openapi.json")
    KEYS = [
        "ENVIRONMENT", "HTTP_HOST", "HTTP_PORT", "KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI",
        "MONGODB_DATABASE", "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET",
        "SMTP_HOST", "SMTP_PORT", "PUBLIC_BASE_URL", "LOG_LEVEL", "FAKE_MODE", "FAKE_ALL",
        "CONSUMER_ENABLED", "OUTBOX_RELAY_ENABLED",
    ]

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz():
        return {"status": "ready"}

    @app.get(f"/api/{name}/env")
    def env():
        return {k: os.environ.get(k) for k in KEYS}

    uvicorn.run(
        app, host=os.environ["HTTP_HOST"], port=int(os.environ["HTTP_PORT"]), log_level="warning"
    )
    """
)


@pytest.fixture(scope="module")
def fake_service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fake") / "fake_service.py"
    path.write_text(FAKE_SERVICE)
    return path


def _argv(script: Path) -> Callable[[str], Sequence[str]]:
    def argv(name: str) -> Sequence[str]:
        return [sys.executable, str(script), name]

    return argv


def _stack(
    data: Path | None,
    script: Path,
    services: tuple[str, ...],
    endpoints: Endpoints | None,
    extra_env: Mapping[str, Mapping[str, str]] | None = None,
    consumes_apart: tuple[str, ...] = (),
) -> Stack:
    return Stack(
        data,
        StackPorts.free(services, consumes_apart),
        endpoints=endpoints,
        services=services,
        consumes_apart=consumes_apart,
        service_argv=_argv(script),
        extra_env=extra_env,
        ready_timeout=60,
    )


@pytest.fixture(scope="module")
def stack(
    infra: Endpoints, fake_service: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    s = _stack(
        tmp_path_factory.mktemp("stack"),
        fake_service,
        ("alpha", "beta"),
        infra,
        extra_env={"*": {"FAKE_ALL": "yes"}, "beta": {"FAKE_MODE": "beta-mode"}},
    )
    s.start()
    try:
        yield s
    finally:
        s.stop()


def test_services_get_the_infrastructure_and_their_own_names(
    stack: Stack, infra: Endpoints
) -> None:
    env = httpx.get(f"{stack.api_url('alpha')}/env", trust_env=False).json()
    assert env["ENVIRONMENT"] == "development"
    assert env["HTTP_HOST"] == "127.0.0.1"
    assert env["HTTP_PORT"] == str(stack.ports.services["alpha"])
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == infra.kafka_bootstrap
    assert "directConnection=true" in env["MONGODB_URI"]
    assert env["MONGODB_DATABASE"] == "alpha"
    assert env["S3_ENDPOINT"] == infra.s3_endpoint
    assert env["S3_ACCESS_KEY"] == infra.s3_access_key
    assert env["S3_SECRET_KEY"] == infra.s3_secret_key
    assert env["S3_BUCKET"] == "alpha"
    assert env["SMTP_HOST"] == infra.smtp_host
    assert env["SMTP_PORT"] == str(infra.smtp_port)
    assert env["PUBLIC_BASE_URL"] == stack.gateway_url
    assert env["LOG_LEVEL"] == "INFO"
    assert env["FAKE_ALL"] == "yes"
    assert env["FAKE_MODE"] is None

    beta = httpx.get(f"{stack.api_url('beta')}/env", trust_env=False).json()
    assert beta["MONGODB_DATABASE"] == "beta"
    assert beta["FAKE_MODE"] == "beta-mode"


def test_each_service_bucket_exists(stack: Stack, infra: Endpoints) -> None:
    client = Minio(
        infra.s3_host_port,
        access_key=infra.s3_access_key,
        secret_key=infra.s3_secret_key,
        secure=infra.s3_secure,
        region="us-east-1",
    )
    assert client.bucket_exists("alpha")
    assert client.bucket_exists("beta")


def test_the_gateway_routes_to_each_service_and_lists_their_docs(stack: Stack) -> None:
    with httpx.Client(base_url=stack.gateway_url, trust_env=False) as c:
        assert c.get("/api/alpha/docs").status_code == 200
        assert c.get("/api/beta/openapi.json").json()["paths"]
        index = c.get("/api/").text
        assert 'href="/api/alpha/docs"' in index
        assert 'href="/api/beta/docs"' in index
        assert c.get("/readyz").json()["services"] == {"alpha": "ready", "beta": "ready"}


def test_status_lists_every_process_ready(stack: Stack) -> None:
    statuses = {s.name: s for s in stack.status()}
    assert set(statuses) == {"alpha", "beta", GATEWAY}
    assert all(s.running and s.ready and s.pid for s in statuses.values())
    assert statuses["alpha"].port == stack.ports.services["alpha"]


def test_a_killed_service_is_unavailable_then_comes_back_with_new_settings(stack: Stack) -> None:
    stack.kill_service("beta", signal.SIGKILL)
    with httpx.Client(base_url=stack.gateway_url, trust_env=False) as c:
        down = c.get("/api/beta/env")
        assert down.status_code == 503
        assert "beta" in down.json()["detail"]

        stack.start_service("beta", extra_env={"FAKE_MODE": "after-crash"})
        assert c.get("/api/beta/env").json()["FAKE_MODE"] == "after-crash"

        stack.restart_service("beta")
        assert c.get("/api/beta/env").json()["FAKE_MODE"] == "beta-mode"


def test_a_service_consuming_apart_has_a_consumer_process_that_goes_and_comes_with_it(
    infra: Endpoints, fake_service: Path, tmp_path: Path
) -> None:
    s = _stack(tmp_path, fake_service, ("alpha", "beta"), infra, consumes_apart=("beta",))
    s.start()
    try:
        statuses = {status.name: status for status in s.status()}
        assert set(statuses) == {"alpha", "beta", "beta-consumer", GATEWAY}
        assert all(status.running and status.ready for status in statuses.values())
        port = s.ports.consumers["beta"]
        assert statuses["beta-consumer"].port == port
        assert s.process("beta-consumer").port == port
        with pytest.raises(InfraError, match=f"known: alpha, beta, beta-consumer, {GATEWAY}$"):
            s.process("gamma-consumer")
        consumer_url = f"http://127.0.0.1:{port}/api/beta/env"
        with httpx.Client(trust_env=False) as c:
            api = c.get(f"{s.api_url('beta')}/env").json()
            assert api["CONSUMER_ENABLED"] == "false"
            assert api["OUTBOX_RELAY_ENABLED"] is None
            consumer = c.get(consumer_url).json()
            assert consumer["CONSUMER_ENABLED"] == "true"
            assert consumer["OUTBOX_RELAY_ENABLED"] == "false"
            assert consumer["HTTP_PORT"] == str(port)
            assert consumer["MONGODB_DATABASE"] == "beta"
            assert c.get(f"{s.api_url('alpha')}/env").json()["CONSUMER_ENABLED"] is None

            s.kill_service("beta", signal.SIGKILL)
            gone = {status.name: status.running for status in s.status()}
            assert gone["beta"] is False
            assert gone["beta-consumer"] is False
            assert gone["alpha"] is True

            s.start_service("beta", extra_env={"FAKE_MODE": "after-crash"})
            assert c.get(consumer_url).json()["FAKE_MODE"] == "after-crash"
            assert c.get(f"{s.api_url('beta')}/env").json()["FAKE_MODE"] == "after-crash"
    finally:
        s.stop()
    assert not port_in_use(port)


def test_a_service_that_fails_to_start_is_reported_and_the_rest_stopped(
    infra: Endpoints, fake_service: Path, tmp_path: Path
) -> None:
    s = _stack(
        tmp_path,
        fake_service,
        ("gamma", "delta"),
        infra,
        extra_env={"delta": {"FAKE_FAIL": "no signing key configured"}},
    )
    with pytest.raises(NotReadyError) as failure:
        s.start()
    assert failure.value.name == "delta"
    assert "no signing key configured" in failure.value.log_tail
    assert not any(st.running for st in s.status())
    assert not port_in_use(s.ports.gateway)
    assert not port_in_use(s.ports.services["gamma"])


def test_another_launcher_finds_and_stops_a_running_stack_and_data_survives(
    fake_service: Path, tmp_path: Path
) -> None:
    services = ("alpha",)
    first = _stack(tmp_path, fake_service, services, None)
    first.start()
    try:
        assert first.infra is not None
        assert first.maildir == tmp_path / "mail"
        client = Minio(
            first.endpoints.s3_host_port,
            access_key=first.endpoints.s3_access_key,
            secret_key=first.endpoints.s3_secret_key,
            secure=False,
            region="us-east-1",
        )
        client.put_object("alpha", "kept.txt", io.BytesIO(b"kept"), 4)

        # What ``make status`` / ``make down`` do: a new object over the same folder.
        again = Stack.for_data_dir(tmp_path, services=services, service_argv=_argv(fake_service))
        assert again.ports == first.ports
        assert again.endpoints.s3_access_key == first.endpoints.s3_access_key
        assert again.is_ready()
        again.stop(remove_data=False)
        assert not first.is_running()
        assert not port_in_use(first.ports.gateway)
        assert not port_in_use(first.ports.infra.kafka)

        # ``make up`` again: same ports, same data.
        third = Stack.for_data_dir(tmp_path, services=services, service_argv=_argv(fake_service))
        third.start()
        assert third.gateway_url == first.gateway_url
        response = client.get_object("alpha", "kept.txt")
        assert response.read() == b"kept"
        response.close()
        response.release_conn()
    finally:
        first.stop(remove_data=False)
    assert not any(st.running for st in first.status())


def test_restarting_an_infrastructure_component_through_the_stack(
    fake_service: Path, tmp_path: Path
) -> None:
    with _stack(tmp_path, fake_service, ("alpha",), None) as s:
        before = {st.name: st.pid for st in s.status()}
        s.restart_component("kafka")
        after = {st.name: st.pid for st in s.status()}
        assert after["kafka"] != before["kafka"]
        assert after["alpha"] == before["alpha"]
        assert all(st.ready for st in s.status())


def test_a_stack_on_external_infrastructure_refuses_to_restart_it(stack: Stack) -> None:
    with pytest.raises(InfraError, match="not managed by this stack"):
        stack.restart_component("kafka")
