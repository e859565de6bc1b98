"""The whole system on one machine: infrastructure, the five services, the gateway.

``make up`` / ``make down`` / ``make status`` drive a :class:`Stack` over
``.data/``; tests drive one on free ports in a temporary folder, either with
its own local infrastructure or against endpoints they already have (the
containers of the Docker test backend).

Every process is detached (own session, log in ``<data>/logs``, pid file in
``<data>/run``), so the command that starts the stack can return and a later
one can stop it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from opr_shared.events.envelope import SERVICES
from opr_shared.localinfra import (
    FROM_ENV,
    LOOPBACK,
    ComponentStatus,
    Endpoints,
    FromEnv,
    InfraError,
    LocalInfra,
    ManagedProcess,
    Ports,
    free_ports,
    http_ok_probe,
    parse_port,
    process_status,
)

GATEWAY = "gateway"

DEFAULT_SERVICE_PORTS: dict[str, int] = {
    "identity": 8101,
    "registration": 8102,
    "documents": 8103,
    "notifier": 8104,
    "card": 8105,
}
DEFAULT_GATEWAY_PORT = 8080
GATEWAY_PORT_ENV = "OPR_PORT_GATEWAY"

SERVICE_READY_TIMEOUT = 120.0
SERVICE_STOP_TIMEOUT = 15.0

STATE_FILE = "stack.json"

# Per-service environment, as in each service's image. Documents holds large
# short-lived buffers (upload bodies, decoded images): from 256 KiB they get pages
# of their own that go back to the system when freed. glibc otherwise raises that
# threshold to the largest block freed, and later ones stay in the heap.
TUNING: dict[str, dict[str, str]] = {"documents": {"MALLOC_MMAP_THRESHOLD_": "262144"}}

# How long a service's outbox relay, woken by a commit, waits for more (service_env).
LOCAL_OUTBOX_LINGER_SECONDS = "0.2"

# Database connections per service process (service_env). The local database
# serves each connection on a thread of its own and runs one command at a time
# under its storage lock: commands beyond that wait on the lock, and the threads
# waking and waiting cost it CPU (64 connections busy at once took 1.1 ms of its
# CPU for a find and a one-update transaction, 8 took 0.74, 4 took 0.48). A
# thousand-student intake with eight per service used 11 % less database CPU
# than with the driver's default of a hundred.
LOCAL_MONGODB_MAX_POOL_SIZE = "8"

# Partitions of each topic the services create on the local broker (service_env).
# Tansu keeps every partition's share of a produce as an object of its own and
# lists a partition's folder on each read, so its work grows with the partitions
# a record can land in. One service process consumes every partition anyway; with
# one partition a topic, a 1,000-student intake cost the broker and its storage a
# quarter less CPU, its consumers took larger batches (21.6 transactions a student
# instead of 24.3) and the e-mails came no later. (A consumer handles a partition's
# records in order: the 8,000 invitations of a whole intake's import now go out
# through one lane of the notifier, more slowly; see bench/history.md.) Production
# declares its topics (twelve partitions, deploy/k8s/base/platform/topics.yaml).
# Topics already created keep their partitions.
LOCAL_KAFKA_TOPIC_PARTITIONS = "1"

# Services whose consumer runs in a process of its own, "<service>-consumer", as a
# second replica consuming apart from the requests would: documents' uploads
# (photo checks, megabyte bodies) held its consumer back when the two shared a
# process, thousands of records behind in a large intake. The service's process
# serves the API with CONSUMER_ENABLED=false and keeps the outbox relay (woken by
# its own commits: there is no change stream locally); the consumer process runs
# no relay, so rows it writes are published by the other's next sweep.
CONSUMES_APART: tuple[str, ...] = ("documents",)
CONSUMER_SUFFIX = "-consumer"
DEFAULT_CONSUMER_PORTS: dict[str, int] = {"documents": 8113}

Progress = Callable[[str], None]
ServiceArgv = Callable[[str], Sequence[str]]


def service_port_env(service: str) -> str:
    return f"OPR_PORT_{service.upper()}"


@dataclass
class StackPorts:
    """Ports of everything in a stack: infrastructure, services, gateway."""

    infra: Ports = field(default_factory=Ports)
    services: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SERVICE_PORTS))
    gateway: int = DEFAULT_GATEWAY_PORT
    # The consumer processes of CONSUMES_APART, by service.
    consumers: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CONSUMER_PORTS))

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, base: StackPorts | None = None
    ) -> Self:
        """The dev-stack defaults (or ``base``), each overridden by its ``OPR_PORT_*`` variable."""
        env = os.environ if environ is None else environ
        services = dict(base.services if base is not None else DEFAULT_SERVICE_PORTS)
        for name in services:
            raw = env.get(service_port_env(name))
            if raw:
                services[name] = parse_port(raw, service_port_env(name))
        consumers = dict(base.consumers if base is not None else DEFAULT_CONSUMER_PORTS)
        for name in consumers:
            variable = service_port_env(f"{name}_consumer")
            raw = env.get(variable)
            if raw:
                consumers[name] = parse_port(raw, variable)
        raw_gateway = env.get(GATEWAY_PORT_ENV)
        default_gateway = base.gateway if base is not None else DEFAULT_GATEWAY_PORT
        gateway = parse_port(raw_gateway, GATEWAY_PORT_ENV) if raw_gateway else default_gateway
        infra = Ports.from_env(env, base.infra if base is not None else None)
        return cls(infra=infra, services=services, gateway=gateway, consumers=consumers)

    @classmethod
    def free(
        cls, services: Sequence[str] = SERVICES, consumes_apart: Sequence[str] = CONSUMES_APART
    ) -> Self:
        """Free ports for everything (tests must never meet a running dev stack)."""
        apart = [name for name in consumes_apart if name in services]
        ports = free_ports(len(services) + len(apart) + 1)
        return cls(
            infra=Ports.free(),
            services=dict(zip(services, ports[: len(services)], strict=True)),
            gateway=ports[-1],
            consumers=dict(zip(apart, ports[len(services) : -1], strict=True)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "infra": self.infra.as_dict(),
            "services": self.services,
            "gateway": self.gateway,
            "consumers": self.consumers,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        consumers = data.get("consumers", DEFAULT_CONSUMER_PORTS)  # a state file from before
        return cls(
            infra=Ports(**{k: int(v) for k, v in data["infra"].items()}),
            services={str(k): int(v) for k, v in data["services"].items()},
            gateway=int(data["gateway"]),
            consumers={str(k): int(v) for k, v in consumers.items()},
        )


def built_portal() -> Path | None:
    """The portal's built files (``portal/dist`` of this workspace), if built."""
    for folder in Path(__file__).resolve().parents:
        if (folder / "uv.lock").is_file():
            dist = folder / "portal" / "dist"
            return dist if (dist / "index.html").is_file() else None
    return None


def with_direct_connection(uri: str) -> str:
    """The MongoDB URI with ``directConnection=true`` (a one-node replica set reached directly)."""
    parts = urlsplit(uri)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k.lower() != "directconnection"]
    query.append(("directConnection", "true"))
    path = parts.path or "/"
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), parts.fragment))


def _quiet(_: str) -> None:
    return None


class Stack:
    """Infrastructure + services + gateway, started and stopped as one.

    - ``data_dir``: where data, logs and pid files live (``None``: a temporary
      folder, deleted by :meth:`stop`).
    - ``endpoints``: use this existing infrastructure instead of starting
      :class:`~opr_shared.localinfra.LocalInfra`; infrastructure components then
      cannot be restarted from here.
    - ``extra_env``: per-service environment added to every launch
      (key ``"*"``: every service), e.g. for fault injection.
    - ``service_argv``: how to launch a service (default ``python -m <service>``).
    - ``kafka_retention_seconds``: how long the local broker keeps a record batch
      every consumer group has read (None: every batch kept; default
      ``OPR_KAFKA_RETENTION_SECONDS`` or a minute).
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        ports: StackPorts | None = None,
        *,
        endpoints: Endpoints | None = None,
        services: Sequence[str] = SERVICES,
        consumes_apart: Sequence[str] = CONSUMES_APART,
        extra_env: Mapping[str, Mapping[str, str]] | None = None,
        s3_access_key: str | None = None,
        s3_secret_key: str | None = None,
        python: str | None = None,
        service_argv: ServiceArgv | None = None,
        ready_timeout: float = SERVICE_READY_TIMEOUT,
        stop_timeout: float = SERVICE_STOP_TIMEOUT,
        portal_dir: Path | None = None,
        progress: Progress | None = None,
        kafka_retention_seconds: float | FromEnv | None = FROM_ENV,
    ) -> None:
        self._owns_dir = data_dir is None
        root = Path(tempfile.mkdtemp(prefix="opr-stack-")) if data_dir is None else data_dir
        self.data_dir = root.resolve()
        self.ports = ports if ports is not None else StackPorts.from_env()
        unknown = [s for s in services if s not in self.ports.services]
        if unknown:
            raise InfraError(f"no port for service(s) {', '.join(unknown)}")
        self.services: tuple[str, ...] = tuple(services)
        # Services of this stack whose consumer runs in a process of its own.
        self.consumes_apart: tuple[str, ...] = tuple(
            name for name in consumes_apart if name in self.services
        )
        missing = [s for s in self.consumes_apart if s not in self.ports.consumers]
        if missing:
            raise InfraError(f"no consumer port for service(s) {', '.join(missing)}")
        self.python = python or sys.executable
        self.extra_env: dict[str, dict[str, str]] = {
            k: dict(v) for k, v in (extra_env or {}).items()
        }
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.portal_dir = portal_dir if portal_dir is not None else built_portal()
        self.progress: Progress = progress or _quiet
        self._service_argv = service_argv or (lambda name: [self.python, "-m", name])
        self.infra: LocalInfra | None
        if endpoints is None:
            self.infra = LocalInfra(
                self.data_dir,
                self.ports.infra,
                s3_access_key=s3_access_key,
                s3_secret_key=s3_secret_key,
                python=self.python,
                kafka_retention_seconds=kafka_retention_seconds,
                # Every service here runs OUTBOX_WATCH=false: no change stream reads an oplog.
                change_streams=False,
            )
            self._endpoints = self.infra.endpoints
        else:
            self.infra = None
            self._endpoints = endpoints
        self._services: dict[str, ManagedProcess] = {
            name: self._service_process(name) for name in self.services
        }
        self._consumers: dict[str, ManagedProcess] = {
            name: self._consumer_process(name) for name in self.consumes_apart
        }
        self._gateway = self._gateway_process()

    # --- construction from a data folder (the make targets) ---

    @classmethod
    def for_data_dir(
        cls,
        data_dir: Path,
        environ: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """The stack of a data folder, as the last start recorded it (ports, S3 keys).

        While anything of it runs, the recorded ports are used as they are; once
        stopped, ``OPR_PORT_*`` variables override them (defaults when nothing
        was recorded).
        """
        state_path = data_dir / "run" / STATE_FILE
        state: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(state_path.read_text())
        recorded: StackPorts | None = None
        with contextlib.suppress(KeyError, TypeError, ValueError):
            recorded = StackPorts.from_dict(state["ports"])
        kwargs.setdefault("s3_access_key", state.get("s3_access_key"))
        kwargs.setdefault("s3_secret_key", state.get("s3_secret_key"))
        if recorded is not None:
            stack = cls(data_dir, recorded, **kwargs)
            if stack.is_running():
                return stack
        return cls(data_dir, StackPorts.from_env(environ, recorded), **kwargs)

    def _save_state(self) -> None:
        run = self.data_dir / "run"
        run.mkdir(parents=True, exist_ok=True)
        state = {
            "ports": self.ports.to_dict(),
            "services": list(self.services),
            "s3_access_key": self._endpoints.s3_access_key,
            "s3_secret_key": self._endpoints.s3_secret_key,
        }
        tmp = run / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(run / STATE_FILE)

    # --- addresses ---

    @property
    def endpoints(self) -> Endpoints:
        return self._endpoints

    @property
    def gateway_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.gateway}"

    def service_url(self, name: str) -> str:
        """The service's own address (not through the gateway)."""
        self._check_service(name)
        return f"http://{LOOPBACK}:{self.ports.services[name]}"

    def process_urls(self, name: str) -> list[str]:
        """The addresses of every process of a service (its own, then its consumer's
        if it consumes apart): each one's ``/metrics`` counts what that process did."""
        urls = [self.service_url(name)]
        if name in self.consumes_apart:
            urls.append(f"http://{LOOPBACK}:{self.ports.consumers[name]}")
        return urls

    def api_url(self, name: str) -> str:
        """The service's API through the gateway: ``<gateway>/api/<name>``."""
        self._check_service(name)
        return f"{self.gateway_url}/api/{name}"

    @property
    def maildir(self) -> Path | None:
        return self._endpoints.maildir

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    # --- processes ---

    def _check_service(self, name: str) -> None:
        if name not in self.services:
            raise InfraError(
                f"unknown service {name!r}; this stack runs {', '.join(self.services)}"
            )

    def service_env(self, name: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment a service process is launched with."""
        ep = self._endpoints
        env = dict(os.environ)
        env.update(
            {
                "ENVIRONMENT": "development",
                "HTTP_HOST": LOOPBACK,
                "HTTP_PORT": str(self.ports.services[name]),
                "KAFKA_BOOTSTRAP_SERVERS": ep.kafka_bootstrap,
                "MONGODB_URI": with_direct_connection(ep.mongodb_uri),
                "MONGODB_DATABASE": name,
                "S3_ENDPOINT": ep.s3_endpoint,
                "S3_ACCESS_KEY": ep.s3_access_key,
                "S3_SECRET_KEY": ep.s3_secret_key,
                "S3_BUCKET": name,
                "SMTP_HOST": ep.smtp_host,
                "SMTP_PORT": str(ep.smtp_port),
                "PUBLIC_BASE_URL": self.gateway_url,
                # One process per service here: its commits wake its relay directly.
                # A change stream costs the local database (a Python server) about
                # a quarter of its CPU under load, for rows no other replica writes.
                "OUTBOX_WATCH": "false",
                # Tansu re-balances a group only after the session timeout: keep it short.
                "KAFKA_SESSION_TIMEOUT_MS": "6000",
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
                # As in the images: glibc otherwise gives every thread that
                # allocates (argon2, image checks, the driver) an arena of its own.
                "MALLOC_ARENA_MAX": "2",
            }
        )
        # The local broker writes an object for each partition's share of a
        # produce: relaying the rows of the commits of the next 0.2 s together
        # cut its CPU by a fifth, and the database's relay reads and writes, for
        # 1,000 students at once. Set in the environment, another value wins.
        env.setdefault("OUTBOX_LINGER_SECONDS", LOCAL_OUTBOX_LINGER_SECONDS)
        env.setdefault("MONGODB_MAX_POOL_SIZE", LOCAL_MONGODB_MAX_POOL_SIZE)
        env.setdefault("KAFKA_TOPIC_PARTITIONS", LOCAL_KAFKA_TOPIC_PARTITIONS)
        env.update(TUNING.get(name, {}))
        if name in self.consumes_apart:
            env["CONSUMER_ENABLED"] = "false"  # its consumer process consumes
        if "identity" in self.ports.services:
            env["JWKS_URL"] = (
                f"http://{LOOPBACK}:{self.ports.services['identity']}"
                "/api/identity/.well-known/jwks.json"
            )
        env.update(self.extra_env.get("*", {}))
        env.update(self.extra_env.get(name, {}))
        if extra:
            env.update(extra)
        return env

    def _service_process(self, name: str) -> ManagedProcess:
        return self._launched(name, name, self.ports.services[name], self.service_env(name))

    def _launched(self, name: str, label: str, port: int, env: dict[str, str]) -> ManagedProcess:
        """A process of service ``name`` (logs and pid file named ``label``)."""
        return ManagedProcess(
            label,
            list(self._service_argv(name)),
            log_path=self.logs_dir / f"{label}.log",
            pid_path=self.data_dir / "run" / f"{label}.pid",
            probe=lambda: http_ok_probe(f"http://{LOOPBACK}:{port}/readyz"),
            env=env,
            cwd=self.data_dir,
            port=port,
            ready_timeout=self.ready_timeout,
            stop_timeout=self.stop_timeout,
        )

    def consumer_env(self, name: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a service's consumer process (see CONSUMES_APART)."""
        env = self.service_env(name, extra)
        env.update(
            {
                "HTTP_PORT": str(self.ports.consumers[name]),
                "CONSUMER_ENABLED": "true",
                "OUTBOX_RELAY_ENABLED": "false",
            }
        )
        return env

    def _consumer_process(self, name: str) -> ManagedProcess:
        label = f"{name}{CONSUMER_SUFFIX}"
        return self._launched(name, label, self.ports.consumers[name], self.consumer_env(name))

    def _launches(
        self, name: str, extra: Mapping[str, str] | None
    ) -> list[tuple[ManagedProcess, dict[str, str]]]:
        """A service's processes, each with the environment of this launch."""
        launches = [(self._services[name], self.service_env(name, extra))]
        if name in self._consumers:
            launches.append((self._consumers[name], self.consumer_env(name, extra)))
        return launches

    def _processes_of(self, name: str) -> list[ManagedProcess]:
        """A service's processes: its own and, if it consumes apart, its consumer's."""
        own = [self._services[name]]
        return [*own, self._consumers[name]] if name in self._consumers else own

    def _gateway_process(self) -> ManagedProcess:
        argv = [
            self.python,
            "-m",
            "opr_shared.devstack.gateway",
            "--host",
            LOOPBACK,
            "--port",
            str(self.ports.gateway),
            "--log-level",
            "warning",
        ]
        for name in self.services:
            argv += ["--service", f"{name}={self.service_url(name)}"]
        if self.portal_dir is not None:
            argv += ["--portal-dir", str(self.portal_dir)]
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        health = f"{self.gateway_url}/healthz"
        return ManagedProcess(
            GATEWAY,
            argv,
            log_path=self.logs_dir / f"{GATEWAY}.log",
            pid_path=self.data_dir / "run" / f"{GATEWAY}.pid",
            probe=lambda: http_ok_probe(health),
            env=env,
            cwd=self.data_dir,
            port=self.ports.gateway,
            ready_timeout=30.0,
            stop_timeout=self.stop_timeout,
        )

    def process(self, name: str) -> ManagedProcess:
        """The process of a service, of the gateway or of a local infrastructure component."""
        if name == GATEWAY:
            return self._gateway
        if name in self._services:
            return self._services[name]
        consumer = name.removesuffix(CONSUMER_SUFFIX)
        if name.endswith(CONSUMER_SUFFIX) and consumer in self._consumers:
            return self._consumers[consumer]
        if self.infra is not None and name in self.infra.components:
            return self.infra.process(name)
        hint = "" if self.infra else " (the infrastructure is not managed by this stack)"
        known = ", ".join(self.components)
        raise InfraError(f"unknown component {name!r}{hint}; known: {known}")

    @property
    def components(self) -> tuple[str, ...]:
        infra = self.infra.components if self.infra is not None else ()
        consumers = (f"{name}{CONSUMER_SUFFIX}" for name in self.consumes_apart)
        return (*infra, *self.services, *consumers, GATEWAY)

    def _all_processes(self) -> list[ManagedProcess]:
        return [self.process(name) for name in self.components]

    # --- lifecycle ---

    def start(self) -> None:
        """Start whatever is not running yet and wait until all of it is ready.

        On failure, what this call started is stopped again and the
        :class:`~opr_shared.localinfra.NotReadyError` (with the log tail) propagates.
        """
        already = {proc.name for proc in self._all_processes() if proc.adopt()}
        try:
            if self.infra is not None and set(self.infra.components) <= already:
                self.infra.start()
                self.progress("infrastructure already running")
            elif self.infra is not None:
                self.progress("starting the infrastructure (Kafka, MongoDB, S3, SMTP)")
                began = time.monotonic()
                self.infra.start()
                self.progress(f"infrastructure ready in {time.monotonic() - began:.1f}s")
            self.ensure_buckets()
            self._save_state()
            self._start_services(self.services)
            self._start_gateway()
        except BaseException:
            for proc in reversed(self._all_processes()):
                if proc.name not in already:
                    with contextlib.suppress(Exception):
                        proc.stop()
            raise

    def _start_services(self, names: Sequence[str], extra: Mapping[str, str] | None = None) -> None:
        began = time.monotonic()
        pending: list[ManagedProcess] = []
        for name in names:
            for proc, env in self._launches(name, extra):
                if proc.adopt():
                    continue
                proc.env = env
                proc.start(wait=False)
                pending.append(proc)
        for proc in pending:
            remaining = max(1.0, self.ready_timeout - (time.monotonic() - began))
            proc.wait_ready(remaining)
            self.progress(f"{proc.name} ready on port {proc.port}")

    def _start_gateway(self) -> None:
        if not self._gateway.adopt():
            self._gateway.start()
            self.progress(f"gateway ready on {self.gateway_url}")
        else:
            self._gateway.wait_ready()

    def stop(self, *, remove_data: bool | None = None) -> None:
        """Gateway, services, then infrastructure; data is kept unless the folder is temporary."""
        errors: list[str] = []
        services = [*self._services.values(), *self._consumers.values()]
        for proc in [self._gateway, *reversed(services)]:
            try:
                if proc.adopt():
                    self.progress(f"stopping {proc.name} (pid {proc.pid})")
                proc.stop()
            except Exception as exc:
                errors.append(f"{proc.name}: {exc}")
        if self.infra is not None:
            for proc in reversed([self.infra.process(n) for n in self.infra.components]):
                try:
                    if proc.adopt():
                        self.progress(f"stopping {proc.name} (pid {proc.pid})")
                    proc.stop()
                except Exception as exc:
                    errors.append(f"{proc.name}: {exc}")
        if remove_data if remove_data is not None else self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if errors:
            raise InfraError("could not stop: " + "; ".join(errors))

    def ensure_buckets(self) -> None:
        """Each service's bucket exists (services may also create it; this is idempotent)."""
        from minio import Minio

        ep = self._endpoints
        client = Minio(
            ep.s3_host_port,
            access_key=ep.s3_access_key,
            secret_key=ep.s3_secret_key,
            secure=ep.s3_secure,
            region="us-east-1",
        )
        for name in self.services:
            if not client.bucket_exists(name):
                client.make_bucket(name)

    def start_service(self, name: str, extra_env: Mapping[str, str] | None = None) -> None:
        """Start one service (if not running) and wait until it is ready.

        ``extra_env`` applies to this launch only, on top of the stack's ``extra_env``.
        """
        self._check_service(name)
        self._start_services([name], extra_env)

    def stop_service(self, name: str) -> None:
        """Stop a service's processes (its consumer's too, if it consumes apart)."""
        self._check_service(name)
        for proc in reversed(self._processes_of(name)):
            proc.stop()

    def kill_service(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Deliver ``sig`` to a service's processes (SIGKILL: a crash, waited for)."""
        self._check_service(name)
        for proc in self._processes_of(name):
            proc.kill(sig)

    def restart_service(self, name: str, extra_env: Mapping[str, str] | None = None) -> None:
        self.stop_service(name)
        self.start_service(name, extra_env)

    def kill_component(self, name: str, sig: int = signal.SIGKILL) -> None:
        self.process(name).kill(sig)

    def restart_component(self, name: str) -> None:
        """Stop and start one component (service, gateway or local infrastructure), data kept."""
        if name in self._services:
            self.restart_service(name)
            return
        proc = self.process(name)
        proc.stop()
        proc.start()

    # --- observation ---

    def status(self) -> list[ComponentStatus]:
        return [process_status(proc) for proc in self._all_processes()]

    def is_running(self) -> bool:
        """Anything of this stack runs."""
        return any(proc.adopt() for proc in self._all_processes())

    def is_ready(self) -> bool:
        """Everything of this stack runs and answers its readiness probe."""
        return all(s.ready for s in self.status())

    def log_tail(self, name: str, lines: int = 40) -> str:
        return self.process(name).log_tail(lines)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
