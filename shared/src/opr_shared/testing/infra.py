"""pytest plugin: real Kafka, MongoDB, S3 and SMTP for integration and end-to-end tests.

Registered by the repository's root ``conftest.py``. Fixtures (all session-scoped):

- ``infra`` -> :class:`~opr_shared.localinfra.Endpoints`;
- ``infra_backend`` -> :class:`InfraBackend` (which backend, and for the local
  one the :class:`~opr_shared.localinfra.LocalInfra` to restart components of);
- ``stack_factory`` -> :class:`StackFactory`, starting whole systems
  (services + gateway) on free ports;
- ``system`` -> one started :class:`~opr_shared.devstack.stack.Stack` over ``infra``.

The backend is chosen by ``OPR_TEST_INFRA``: ``docker`` (testcontainers),
``local`` (local processes) or ``auto`` (default: docker when a Docker daemon
answers a ping, else local). A backend that cannot start makes the tests that
need it ERROR; nothing is skipped. And a run in which any test marked
``integration`` or ``e2e`` was skipped fails.

Tests share the session's servers: each uses its own database name (and consumer
group), and none drops a database afterwards. The servers are thrown away with
the session, and dropping a database on the local MongoDB-protocol server takes
time that grows with everything stored in it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from opr_shared.devstack.stack import Stack, StackPorts
from opr_shared.events.envelope import SERVICES
from opr_shared.localinfra import Endpoints, InfraError, LocalInfra, Ports

BACKEND_ENV = "OPR_TEST_INFRA"
GUARDED_MARKERS: tuple[str, ...] = ("integration", "e2e")
GUARDED_DIRECTORIES: frozenset[str] = frozenset({"integration", "e2e"})

Backend = Literal["docker", "local"]


def choose_backend(environ: Mapping[str, str] | None = None) -> Backend:
    env = os.environ if environ is None else environ
    choice = env.get(BACKEND_ENV, "auto").strip().lower() or "auto"
    if choice in ("docker", "local"):
        return "docker" if choice == "docker" else "local"
    if choice != "auto":
        raise pytest.UsageError(f"{BACKEND_ENV}={choice!r}: expected docker, local or auto")
    from opr_shared.testing.containers import docker_available

    return "docker" if docker_available() else "local"


@dataclass
class InfraBackend:
    """The running test infrastructure."""

    kind: Backend
    endpoints: Endpoints
    local: LocalInfra | None = None
    _docker: Any = None

    def require_local(self) -> LocalInfra:
        """The local processes, for tests that stop or restart a component."""
        if self.local is None:
            raise InfraError(
                "this test restarts infrastructure components, which only the local backend "
                "supports here; use stack_factory(own_infra=True) for a private local stack"
            )
        return self.local

    def restart_component(self, name: str) -> None:
        self.require_local().restart_component(name)

    def close(self) -> None:
        if self.local is not None:
            self.local.stop(remove_data=False)
        if self._docker is not None:
            self._docker.stop()


def start_backend(kind: Backend, work_dir: Path) -> InfraBackend:
    if kind == "docker":
        from opr_shared.testing.containers import DockerInfra, docker_available

        if not docker_available():
            raise InfraError(f"{BACKEND_ENV}=docker, but no Docker daemon answers a ping")

        docker = DockerInfra(work_dir)
        endpoints = docker.start()
        return InfraBackend(kind="docker", endpoints=endpoints, _docker=docker)
    # Tests read topics from their beginning, as a Kafka container (a week's
    # retention) lets them: the local broker keeps every batch here.
    local = LocalInfra(work_dir, Ports.free(), kafka_retention_seconds=None)
    try:
        endpoints = local.start()
    except BaseException:
        local.stop(remove_data=False)
        raise
    return InfraBackend(kind="local", endpoints=endpoints, local=local)


@pytest.fixture(scope="session")
def infra_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfraBackend]:
    kind = choose_backend()
    # Under pytest's basetemp, so the servers' logs remain for a failed run.
    backend = start_backend(kind, tmp_path_factory.mktemp(f"infra-{kind}"))
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(scope="session")
def infra(infra_backend: InfraBackend) -> Endpoints:
    """Endpoints of real Kafka, MongoDB, S3 and SMTP servers."""
    return infra_backend.endpoints


class StackFactory:
    """Starts whole systems for tests and stops them all at the end of the session.

    Every stack runs on free ports in its own folder. By default it uses the
    session's infrastructure; ``own_infra=True`` gives it private local
    processes instead (needed to restart Kafka or MongoDB under it).
    Kafka topics are named by the services, so two systems sharing one
    infrastructure would read each other's events: run one at a time there.
    """

    def __init__(self, endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.endpoints = endpoints
        self._tmp = tmp_path_factory
        self._stacks: list[Stack] = []

    def __call__(
        self,
        *,
        services: Sequence[str] = SERVICES,
        extra_env: Mapping[str, Mapping[str, str]] | None = None,
        own_infra: bool = False,
        start: bool = True,
        **kwargs: Any,
    ) -> Stack:
        kwargs.setdefault("kafka_retention_seconds", None)  # as the session's broker
        stack = Stack(
            self._tmp.mktemp("stack"),
            StackPorts.free(services),
            endpoints=None if own_infra else self.endpoints,
            services=services,
            extra_env=extra_env,
            **kwargs,
        )
        self._stacks.append(stack)
        if start:
            stack.start()
        return stack

    def close(self) -> None:
        errors: list[str] = []
        while self._stacks:
            stack = self._stacks.pop()
            try:
                stack.stop(remove_data=False)
            except Exception as exc:
                errors.append(str(exc))
        if errors:
            raise InfraError("; ".join(errors))


@pytest.fixture(scope="session")
def stack_factory(
    infra: Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackFactory]:
    factory = StackFactory(infra, tmp_path_factory)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="session")
def system(stack_factory: StackFactory) -> Stack:
    """The whole system (five services + gateway), started once per session over ``infra``."""
    return stack_factory()


# --- a skipped integration or e2e test fails the run ---


class SkipGuard:
    """Records skipped tests marked ``integration``/``e2e`` and fails the session over them."""

    def __init__(self) -> None:
        self.skipped: list[str] = []

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report: pytest.TestReport = yield
        if (
            report.skipped
            and not hasattr(report, "wasxfail")
            and any(item.get_closest_marker(m) for m in GUARDED_MARKERS)
        ):
            self.skipped.append(f"{item.nodeid}: {_skip_reason(report)}")
        return report

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        parts = set(Path(report.nodeid.split("::")[0]).parts)
        if report.skipped and parts & GUARDED_DIRECTORIES:
            self.skipped.append(f"{report.nodeid}: {_skip_reason(report)}")

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.skipped and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.skipped:
            return
        terminalreporter.section("skipped integration/e2e tests", sep="=", red=True, bold=True)
        terminalreporter.line(
            f"{len(self.skipped)} test(s) marked integration or e2e were SKIPPED; "
            "these must run (their infrastructure must start), so the run fails:",
            red=True,
        )
        for line in self.skipped:
            terminalreporter.line(f"  {line}", red=True)


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else ""
    reason = reason or (str(longrepr) if longrepr else "")
    return reason.removeprefix("Skipped: ") or "skipped"


def pytest_configure(config: pytest.Config) -> None:
    for marker in (
        "integration: needs the real Kafka/MongoDB/S3/SMTP servers",
        "e2e: drives the whole system through its public interfaces",
    ):
        config.addinivalue_line("markers", marker)
    if not config.pluginmanager.has_plugin("opr-skip-guard"):
        config.pluginmanager.register(SkipGuard(), "opr-skip-guard")


def pytest_unconfigure(config: pytest.Config) -> None:
    with contextlib.suppress(ValueError):
        plugin = config.pluginmanager.get_plugin("opr-skip-guard")
        if plugin is not None:
            config.pluginmanager.unregister(plugin)
