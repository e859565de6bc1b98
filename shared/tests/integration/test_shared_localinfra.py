"""The test infrastructure speaks the real protocols, and the local one keeps its data.

The first group runs against the ``infra`` fixture (Docker or local backend).
The second starts its own :class:`LocalInfra` to stop, kill and restart its
processes: what the local backend and ``make down``/``make up`` promise.
"""

from __future__ import annotations

import asyncio
import io
import signal
import smtplib
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from minio import Minio
from opr_shared.localinfra import (
    KAFKA,
    MONGODB,
    SMTP,
    Endpoints,
    LocalInfra,
    ManagedProcess,
    NotReadyError,
    Ports,
    http_ok_probe,
    port_in_use,
)
from opr_shared.smtpsink import mail_files, read_mailbox, wait_for_mail
from pymongo import AsyncMongoClient

pytestmark = pytest.mark.integration


def _minio(ep: Endpoints) -> Minio:
    return Minio(
        ep.s3_host_port,
        access_key=ep.s3_access_key,
        secret_key=ep.s3_secret_key,
        secure=ep.s3_secure,
        region="us-east-1",
    )


def _mail(subject: str, to: str = "student@example.org") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "registry@example.edu"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("body of " + subject)
    return msg


def _send(ep: Endpoints, msg: EmailMessage) -> None:
    with smtplib.SMTP(ep.smtp_host, ep.smtp_port, timeout=10) as client:
        client.send_message(msg)


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"S1", partition=0)
    finally:
        await producer.stop()


async def _consume(
    bootstrap: str, topic: str, group: str, count: int, *, commit: bool = True
) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        # A member that left is only forgotten after its session times out: keep it short.
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(received) < count:
                batches = await consumer.getmany(timeout_ms=500, max_records=count - len(received))
                for records in batches.values():
                    received.extend(r.value for r in records if r.value is not None)
        if commit:
            await consumer.commit()
    finally:
        await consumer.stop()
    return received


# --- the infra fixture: whichever backend was chosen ---


async def test_kafka_produces_and_consumes_with_a_consumer_group(infra: Endpoints) -> None:
    topic = f"test-shared-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()

    await _produce(infra.kafka_bootstrap, topic, [b"one", b"two", b"three"])
    assert await _consume(infra.kafka_bootstrap, topic, f"g-{topic}", 2) == [b"one", b"two"]
    # The committed offset holds: the same group resumes after what it consumed.
    assert await _consume(infra.kafka_bootstrap, topic, f"g-{topic}", 1) == [b"three"]


async def test_mongodb_commits_and_aborts_transactions(infra: Endpoints) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri)
    db = client[f"test_shared_{uuid.uuid4().hex[:8]}"]
    try:
        await db.create_collection("forms")
        await db.create_collection("outbox")
        async with client.start_session() as session, await session.start_transaction():
            await db.forms.insert_one({"_id": "S1", "state": "submitted"}, session=session)
            await db.outbox.insert_one({"event": "FormSubmitted"}, session=session)

        async def write_then_fail() -> None:
            async with client.start_session() as session, await session.start_transaction():
                await db.forms.insert_one({"_id": "S2"}, session=session)
                await db.outbox.insert_one({"event": "Lost"}, session=session)
                raise RuntimeError("rollback")

        with pytest.raises(RuntimeError, match="rollback"):
            await write_then_fail()
        assert await db.forms.count_documents({}) == 1
        assert await db.outbox.count_documents({}) == 1
    finally:
        await client.close()


def test_s3_puts_and_gets_objects_with_the_minio_sdk(infra: Endpoints) -> None:
    client = _minio(infra)
    bucket = f"test-shared-{uuid.uuid4().hex[:8]}"
    client.make_bucket(bucket)
    payload = bytes(range(256)) * 4000
    client.put_object(bucket, "docs/passport.pdf", io.BytesIO(payload), len(payload))
    response = client.get_object(bucket, "docs/passport.pdf")
    try:
        assert response.read() == payload
    finally:
        response.close()
        response.release_conn()
    assert client.stat_object(bucket, "docs/passport.pdf").size == len(payload)


async def test_smtp_delivery_appears_as_an_eml_file(infra: Endpoints) -> None:
    assert infra.maildir is not None
    to = f"{uuid.uuid4().hex[:8]}@example.org"
    await asyncio.to_thread(_send, infra, _mail("Invitation to Program Registration", to))
    found = await wait_for_mail(infra.maildir, lambda m: m["To"] == to, timeout=10)
    assert found["Subject"] == "Invitation to Program Registration"


# --- a private LocalInfra: restarts, crashes, down and up ---


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalInfra]:
    infra = LocalInfra(tmp_path_factory.mktemp("localinfra"), Ports.free())
    infra.start()
    try:
        yield infra
    finally:
        infra.stop()


async def test_broker_restart_keeps_topics_messages_and_committed_offsets(
    local: LocalInfra,
) -> None:
    bootstrap = local.endpoints.kafka_bootstrap
    topic = f"restart-{uuid.uuid4().hex[:8]}"
    group = f"g-{topic}"
    await _produce(bootstrap, topic, [b"a", b"b", b"c", b"d"])
    assert await _consume(bootstrap, topic, group, 2) == [b"a", b"b"]

    await asyncio.to_thread(local.restart_component, KAFKA)

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        assert topic in await admin.list_topics()
    finally:
        await admin.close()
    # The group resumes at its committed offset; a new group still sees everything.
    assert await _consume(bootstrap, topic, group, 2) == [b"c", b"d"]
    assert await _consume(bootstrap, topic, f"fresh-{topic}", 4) == [b"a", b"b", b"c", b"d"]


async def test_a_crashed_broker_comes_back_with_its_messages(local: LocalInfra) -> None:
    bootstrap = local.endpoints.kafka_bootstrap
    topic = f"crash-{uuid.uuid4().hex[:8]}"
    await _produce(bootstrap, topic, [b"acked-before-crash"])

    await asyncio.to_thread(local.kill_component, KAFKA, signal.SIGKILL)
    assert not local.process(KAFKA).is_running()
    await asyncio.to_thread(local.start_component, KAFKA)

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=100)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        record = await asyncio.wait_for(consumer.getone(), 30)
        assert record.value == b"acked-before-crash"
    finally:
        await consumer.stop()


def test_smtp_sink_keeps_every_accepted_message_even_when_killed(local: LocalInfra) -> None:
    ep = local.endpoints
    assert ep.maildir is not None
    before = len(mail_files(ep.maildir))
    subjects = [f"burst {uuid.uuid4().hex[:6]} {i}" for i in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda s: _send(ep, _mail(s)), subjects))
    # Killed without warning right after the last 250: nothing accepted may be missing.
    local.kill_component(SMTP, signal.SIGKILL)
    stored = {m["Subject"] for m in read_mailbox(ep.maildir)}
    assert set(subjects) <= stored
    assert len(mail_files(ep.maildir)) == before + len(subjects)

    # While it is away, mail is refused; once back, accepted again.
    with pytest.raises((ConnectionRefusedError, smtplib.SMTPConnectError)):
        _send(ep, _mail("while away"))
    local.start_component(SMTP)
    _send(ep, _mail("after the restart"))
    assert "after the restart" in {m["Subject"] for m in read_mailbox(ep.maildir)}


async def test_mongodb_restart_keeps_committed_documents(local: LocalInfra) -> None:
    uri = local.endpoints.mongodb_uri
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    try:
        await client.opr_test.cards.insert_one({"_id": "C1", "student": "S1"})
    finally:
        await client.close()

    await asyncio.to_thread(local.restart_component, MONGODB)

    client = AsyncMongoClient(uri)
    try:
        assert await client.opr_test.cards.find_one({"_id": "C1"}) == {
            "_id": "C1",
            "student": "S1",
        }
    finally:
        await client.close()


async def test_down_then_up_keeps_topics_documents_files_and_mail(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data = tmp_path_factory.mktemp("downup")
    ports = Ports.free()
    first = LocalInfra(data, ports)
    await asyncio.to_thread(first.start)
    ep = first.endpoints
    assert ep.maildir is not None
    try:
        await _produce(ep.kafka_bootstrap, "kept.events", [b"e1", b"e2"])
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(ep.mongodb_uri)
        await client.registration.registrations.insert_one({"_id": "S1", "status": "Completed"})
        await client.close()
        s3 = _minio(ep)
        s3.make_bucket("documents")
        s3.put_object("documents", "S1/photo.jpg", io.BytesIO(b"jpeg-bytes"), 10)
        await asyncio.to_thread(_send, ep, _mail("Acknowledgement of Program Registration"))
    finally:
        await asyncio.to_thread(first.stop)
    assert data.exists()
    assert not any(port_in_use(p) for p in (ports.kafka, ports.mongodb, ports.s3, ports.smtp))

    # A different object over the same folder, as ``make up`` in a new process would be.
    second = LocalInfra(data, ports)
    await asyncio.to_thread(second.start)
    try:
        assert await _consume(ep.kafka_bootstrap, "kept.events", "after-up", 2) == [b"e1", b"e2"]
        client = AsyncMongoClient(ep.mongodb_uri)
        doc = await client.registration.registrations.find_one({"_id": "S1"})
        await client.close()
        assert doc == {"_id": "S1", "status": "Completed"}
        response = _minio(ep).get_object("documents", "S1/photo.jpg")
        assert response.read() == b"jpeg-bytes"
        response.close()
        response.release_conn()
        subjects = [m["Subject"] for m in read_mailbox(ep.maildir)]
        assert subjects == ["Acknowledgement of Program Registration"]
    finally:
        await asyncio.to_thread(second.stop)


def test_starting_again_adopts_the_running_processes(local: LocalInfra) -> None:
    pids = {s.name: s.pid for s in local.status()}
    again = LocalInfra(local.data_dir, local.ports)
    again.start()
    assert {s.name: s.pid for s in again.status()} == pids
    assert all(s.ready for s in again.status())


def test_a_process_that_dies_while_starting_reports_its_log_tail(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "doomed",
        ["python3", "-c", "import sys; print('missing setting FOO'); sys.exit(3)"],
        log_path=tmp_path / "logs" / "doomed.log",
        pid_path=tmp_path / "run" / "doomed.pid",
        probe=lambda: http_ok_probe("http://127.0.0.1:9/"),
        ready_timeout=20,
    )
    with pytest.raises(NotReadyError) as failure:
        proc.start()
    assert "exited with code 3" in failure.value.reason
    assert "missing setting FOO" in failure.value.log_tail
    assert "missing setting FOO" in str(failure.value)


def test_a_process_that_never_gets_ready_times_out_and_is_reported(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "sleepy",
        ["python3", "-c", "import time; print('still booting', flush=True); time.sleep(60)"],
        log_path=tmp_path / "logs" / "sleepy.log",
        pid_path=tmp_path / "run" / "sleepy.pid",
        probe=lambda: http_ok_probe("http://127.0.0.1:9/"),
        ready_timeout=1.5,
        stop_timeout=2,
    )
    try:
        with pytest.raises(NotReadyError, match="no ready answer within") as failure:
            proc.start()
        assert "still booting" in failure.value.log_tail
    finally:
        proc.stop()
    assert not proc.is_running()
    assert not (tmp_path / "run" / "sleepy.pid").exists()


def test_a_process_ignoring_sigterm_is_killed_after_the_stop_timeout(tmp_path: Path) -> None:
    script = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    log = tmp_path / "stubborn.log"
    proc = ManagedProcess(
        "stubborn",
        ["python3", "-c", script],
        log_path=log,
        pid_path=tmp_path / "stubborn.pid",
        probe=lambda: None if "up" in log.read_text() else (_ for _ in ()).throw(OSError()),
        stop_timeout=1,
    )
    proc.start()
    pid = proc.pid
    assert pid is not None
    # Another launcher object (another ``make`` run) finds it by its pid file and stops it.
    other = ManagedProcess(
        "stubborn",
        ["python3"],
        log_path=log,
        pid_path=tmp_path / "stubborn.pid",
        probe=lambda: None,
        stop_timeout=1,
    )
    assert other.adopt()
    assert other.pid == pid
    other.stop()
    assert not other.is_running()
    assert not proc.is_running()
