"""The Docker test backend: real Kafka (KRaft), MongoDB (one-node replica set) and MinIO.

Used by :mod:`opr_shared.testing.infra` when a Docker daemon answers. The SMTP
sink is always the local :mod:`opr_shared.smtpsink` process, since tests read
its ``.eml`` files from the host.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from testcontainers.community.minio import MinioContainer
from testcontainers.community.mongodb import MongoDbContainer
from testcontainers.core.container import DockerContainer

from opr_shared.localinfra import (
    LOOPBACK,
    Endpoints,
    InfraError,
    ManagedProcess,
    free_port,
    kafka_probe,
    mongodb_probe,
    s3_probe,
    smtp_probe,
)

KAFKA_IMAGE = os.environ.get("OPR_TEST_KAFKA_IMAGE", "apache/kafka:3.9.1")
MONGODB_IMAGE = os.environ.get("OPR_TEST_MONGODB_IMAGE", "mongo:7.0")
MINIO_IMAGE = os.environ.get("OPR_TEST_MINIO_IMAGE", "minio/minio:RELEASE.2025-04-22T22-12-26Z")

STARTUP_TIMEOUT = 120.0


def docker_available(timeout: float = 2.0) -> bool:
    """A Docker daemon answers a ping (the client alone on PATH proves nothing)."""
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=max(1, int(timeout)))
    except Exception:
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            client.close()


def _wait(
    what: str,
    probe: Callable[[], None],
    timeout: float,
    logs: Callable[[], str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            probe()
            return
        except Exception as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.5)
    tail = ""
    if logs is not None:
        with contextlib.suppress(Exception):
            tail = "\n--- container log ---\n" + logs()
    raise InfraError(f"{what} not ready within {timeout:.0f}s (last: {last}){tail}")


def _container_logs(container: DockerContainer) -> str:
    stdout, stderr = container.get_logs()
    text = (stdout or b"") + (stderr or b"")
    return "\n".join(text.decode("utf-8", "replace").splitlines()[-40:])


class DockerInfra:
    """Kafka, MongoDB and MinIO containers plus a local SMTP sink."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.maildir = work_dir / "mail"
        self._containers: list[DockerContainer] = []
        self._smtp: ManagedProcess | None = None
        self._endpoints: Endpoints | None = None

    @property
    def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            raise InfraError("the Docker infrastructure is not started")
        return self._endpoints

    def start(self) -> Endpoints:
        try:
            kafka = self._start_kafka()
            mongodb_uri = self._start_mongodb()
            s3_endpoint, access_key, secret_key = self._start_minio()
            smtp_port = self._start_smtp()
        except BaseException:
            self.stop()
            raise
        self._endpoints = Endpoints(
            kafka_bootstrap=kafka,
            mongodb_uri=mongodb_uri,
            s3_endpoint=s3_endpoint,
            s3_access_key=access_key,
            s3_secret_key=secret_key,
            smtp_host=LOOPBACK,
            smtp_port=smtp_port,
            maildir=self.maildir,
        )
        return self._endpoints

    def stop(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(Exception):
                self._smtp.stop()
            self._smtp = None
        while self._containers:
            container = self._containers.pop()
            with contextlib.suppress(Exception):
                container.stop()
        self._endpoints = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- Kafka: the apache/kafka image in KRaft mode ---

    def _start_kafka(self) -> str:
        container = ApacheKafkaContainer(KAFKA_IMAGE)
        self._containers.append(container)
        container.start(timeout=STARTUP_TIMEOUT)
        bootstrap = container.get_bootstrap_server()
        _wait("Kafka", lambda: kafka_probe(bootstrap), 60, lambda: _container_logs(container))
        return bootstrap

    # --- MongoDB: mongod started as a one-node replica set ---

    def _start_mongodb(self) -> str:
        container = ReplicaSetMongoContainer(MONGODB_IMAGE)
        self._containers.append(container)
        container.start()
        return container.initiate_replica_set()

    # --- S3: MinIO ---

    def _start_minio(self) -> tuple[str, str, str]:
        container = MinioContainer(MINIO_IMAGE)
        self._containers.append(container)
        container.start()
        config = container.get_config()
        endpoint = f"http://{config['endpoint']}"
        _wait("MinIO", lambda: s3_probe(endpoint), 60, lambda: _container_logs(container))
        return endpoint, str(config["access_key"]), str(config["secret_key"])

    # --- SMTP: the local sink ---

    def _start_smtp(self) -> int:
        port = free_port()
        self._smtp = ManagedProcess(
            "smtp",
            [
                sys.executable,
                "-m",
                "opr_shared.smtpsink",
                "--host",
                LOOPBACK,
                "--port",
                str(port),
                "--maildir",
                str(self.maildir),
            ],
            log_path=self.work_dir / "logs" / "smtp.log",
            pid_path=self.work_dir / "run" / "smtp.pid",
            probe=lambda: smtp_probe(LOOPBACK, port),
            port=port,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._smtp.start()
        return port


class ApacheKafkaContainer(DockerContainer):
    """The official ``apache/kafka`` image as a single KRaft node (broker and controller).

    testcontainers' own ``KafkaContainer`` drives Confluent's start scripts, which
    that image does not have. The advertised address must name the port Docker
    mapped on the host, known only once the container runs, so the container
    waits for a start script that is copied in after start.
    """

    PORT = 9092
    START_SCRIPT = "/tmp/opr-kafka-start.sh"  # noqa: S108 - a path inside the container
    CLUSTER_ID = "b3ByLWxvY2FsLWthZmthMQ"

    def __init__(self, image: str = KAFKA_IMAGE) -> None:
        super().__init__(image)
        self.with_exposed_ports(self.PORT)
        for key, value in {
            "CLUSTER_ID": self.CLUSTER_ID,
            "KAFKA_NODE_ID": "1",
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_LISTENERS": "PLAINTEXT://0.0.0.0:9092,BROKER://0.0.0.0:9093,"
            "CONTROLLER://0.0.0.0:9094",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,"
            "CONTROLLER:PLAINTEXT",
            "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9094",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "1",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
            "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "true",
        }.items():
            self.with_env(key, value)
        script = self.START_SCRIPT
        self.with_command(["sh", "-c", f"while [ ! -f {script} ]; do sleep 0.1; done; sh {script}"])

    def get_bootstrap_server(self) -> str:
        return f"{self.get_container_host_ip()}:{self.get_exposed_port(self.PORT)}"

    def start(self, timeout: float = STARTUP_TIMEOUT) -> Self:
        super().start()
        advertised = (
            f"PLAINTEXT://{self.get_container_host_ip()}:{self.get_exposed_port(self.PORT)},"
            "BROKER://localhost:9093"
        )
        script = (
            "#!/bin/sh\n"
            f"export KAFKA_ADVERTISED_LISTENERS='{advertised}'\n"
            "exec /etc/kafka/docker/run\n"
        ).encode()
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            info = tarfile.TarInfo(self.START_SCRIPT.lstrip("/"))
            info.size = len(script)
            info.mode = 0o755
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(script))
        archive.seek(0)
        self.get_wrapped_container().put_archive("/", archive.getvalue())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stdout, stderr = self.get_logs()
            if b"Kafka Server started" in (stdout or b"") + (stderr or b""):
                return self
            self.get_wrapped_container().reload()
            if self.get_wrapped_container().status not in ("created", "running"):
                raise InfraError("the Kafka container exited:\n" + _container_logs(self))
            time.sleep(0.5)
        raise InfraError(f"Kafka not started within {timeout:.0f}s:\n" + _container_logs(self))


class ReplicaSetMongoContainer(MongoDbContainer):
    """``mongod --replSet rs0`` without credentials, initiated as a one-node replica set.

    The stock ``MongoDbContainer`` runs a standalone server (no transactions, no
    change streams) with a root user, which would also require a key file for a
    replica set.
    """

    REPLICA_SET = "rs0"

    def __init__(self, image: str = MONGODB_IMAGE) -> None:
        super().__init__(image)
        self.with_command(f"--replSet {self.REPLICA_SET} --bind_ip_all")

    def _configure(self) -> None:
        """No root user: the image would then enable authentication."""

    def connection_uri(self) -> str:
        host = self.get_container_host_ip()
        port = self.get_exposed_port(self.port)
        return f"mongodb://{host}:{port}/?directConnection=true"

    def initiate_replica_set(self, timeout: float = 60.0) -> str:
        """Run ``rs.initiate`` and wait for this node to be primary; return the URI."""
        config = f"{{_id: '{self.REPLICA_SET}', members: [{{_id: 0, host: 'localhost:27017'}}]}}"
        command = [
            "mongosh",
            "--quiet",
            "--eval",
            f"try {{ rs.status().ok }} catch (e) {{ rs.initiate({config}).ok }}",
        ]
        result = self.exec(command)
        if result.exit_code != 0:
            raise InfraError(
                "rs.initiate failed: " + (result.output or b"").decode("utf-8", "replace")
            )
        uri = self.connection_uri()

        def primary() -> None:
            from pymongo import MongoClient

            client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=2000)
            try:
                hello = client.admin.command("hello")
                if not hello.get("isWritablePrimary"):
                    raise InfraError("not primary yet")
            finally:
                client.close()

        _wait("MongoDB replica set", primary, timeout, lambda: _container_logs(self))
        mongodb_probe(uri)
        return uri
