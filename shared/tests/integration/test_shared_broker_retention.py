"""Retention of the local broker's storage, against the broker itself: batches every
group has read are deleted, the broker lists fewer, and consumers carry on as
Kafka's do after retention (a group resumes where it committed; a new one starts at
the oldest batch left)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from opr_shared.brokerretention import ConsumedBatchPruner
from opr_shared.bucketserver import PrefixListingHandler, delete_object_file
from opr_shared.localinfra import (
    BROKER_BUCKET,
    BROKER_CLUSTER_ID,
    InfraError,
    broker_argv,
    free_ports,
    kafka_probe,
)

pytestmark = pytest.mark.integration

TOPIC = "retention.events"
TP = TopicPartition(TOPIC, 0)


class QuietStorage(PrefixListingHandler):
    def log_message(self, *args: Any) -> None:
        return None


def start_broker(bootstrap: str, env: dict[str, str], folder: Path) -> subprocess.Popen[bytes]:
    with (folder / "broker.log").open("wb") as log:
        return subprocess.Popen(
            broker_argv(bootstrap, f"s3://{BROKER_BUCKET}/"),
            env=env,
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """The broker on its S3 storage (this process's storage server): its bootstrap
    address and its bucket folder."""
    root = (tmp_path / "storage").resolve()
    (root / BROKER_BUCKET).mkdir(parents=True)
    QuietStorage.data_root = root
    storage = ThreadingHTTPServer(("127.0.0.1", 0), QuietStorage)
    threading.Thread(target=storage.serve_forever, daemon=True).start()
    kafka_port, metrics_port = free_ports(2)
    bootstrap = f"127.0.0.1:{kafka_port}"
    env = {
        **os.environ,
        "PROMETHEUS_LISTENER_URL": f"tcp://127.0.0.1:{metrics_port}",
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
        "AWS_ENDPOINT": f"http://127.0.0.1:{storage.server_address[1]}",
    }
    process = start_broker(bootstrap, env, tmp_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                await asyncio.to_thread(kafka_probe, bootstrap)
                break
            except (TimeoutError, InfraError, OSError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                await asyncio.sleep(0.2)
        yield bootstrap, root / BROKER_BUCKET
    finally:
        process.terminate()
        process.wait(10)
        storage.shutdown()
        storage.server_close()


def batches(bucket: Path) -> list[int]:
    records = bucket / "clusters" / BROKER_CLUSTER_ID / "topics" / TOPIC / "partitions"
    return sorted(int(p.name.split(".")[0]) for p in records.glob("*/records/*.batch"))


async def read(bootstrap: str, group: str, count: int, commit: int | None = None) -> list[int]:
    """Offsets of ``count`` records read by ``group`` (from where it committed, or
    the earliest), committing ``commit`` if given."""
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while len(seen) < count and time.monotonic() < deadline:
            got = await consumer.getmany(timeout_ms=300)
            seen += [m.offset for messages in got.values() for m in messages]
        if commit is not None:
            await consumer.commit({TP: commit})
    finally:
        await consumer.stop()
    return seen


async def test_batches_every_group_read_are_deleted_and_consumers_carry_on(
    broker: tuple[str, Path],
) -> None:
    bootstrap, bucket = broker
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for n in range(20):  # one batch each
            await producer.send_and_wait(TOPIC, f"r{n}".encode(), partition=0)
        assert batches(bucket) == list(range(20))

        first_reads = await asyncio.gather(
            read(bootstrap, "ahead", 20, commit=12), read(bootstrap, "behind", 20, commit=8)
        )
        assert first_reads == [list(range(20)), list(range(20))]

        pruner = ConsumedBatchPruner(
            bucket, lambda path: delete_object_file(path, bucket), keep_seconds=0
        )
        assert pruner.prune_once() == 8
        assert batches(bucket) == list(range(8, 20))

        # Each group resumes where it committed; a new one starts at the oldest left.
        resumed = await asyncio.gather(
            read(bootstrap, "behind", 12),
            read(bootstrap, "ahead", 8),
            read(bootstrap, "newcomer", 12, commit=20),
        )
        assert resumed == [list(range(8, 20)), list(range(12, 20)), list(range(8, 20))]

        # "behind" has read nothing new: nothing more has been read by every group.
        assert pruner.prune_once() == 0
        await producer.send_and_wait(TOPIC, b"later", partition=0)
        caught_up = await asyncio.gather(
            read(bootstrap, "ahead", 9, commit=21), read(bootstrap, "behind", 13, commit=21)
        )
        assert caught_up == [[*range(12, 21)], [*range(8, 21)]]
        assert pruner.prune_once() == 12
        assert batches(bucket) == [20]
    finally:
        await producer.stop()
