"""The raw ceiling of the same broker, database and object store.

Each probe runs ``concurrency`` workers for about ``seconds`` against the
servers the system used, with the plainest operations: produce/consume on a
bench topic, insert/find and a two-write transaction (the unit of work's shape:
state row + outbox row) in a bench database, put/get of 64 KiB objects in a
bench bucket. What the probes write is removed again (collections and objects,
never the database).
"""

from __future__ import annotations

import asyncio
import io
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from minio import Minio
from opr_shared.localinfra import Endpoints
from opr_shared.store.mongo import make_client

BENCH_DB = "bench_ceiling"
BENCH_BUCKET = "bench-ceiling"


async def timed(
    seconds: float, concurrency: int, op: Callable[[int], Awaitable[None]]
) -> dict[str, float]:
    """Run ``op`` in ``concurrency`` loops for ``seconds``: operations per second."""
    count = 0
    deadline = time.monotonic() + seconds

    async def worker(w: int) -> None:
        nonlocal count
        i = 0
        while time.monotonic() < deadline:
            await op(w * 1_000_000 + i)
            i += 1
            count += 1

    began = time.monotonic()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.monotonic() - began
    return {"ops": count, "seconds": round(elapsed, 3), "per_second": round(count / elapsed, 1)}


async def kafka(bootstrap: str, seconds: float, messages: int, size: int = 1_024) -> dict[str, Any]:
    topic = f"bench.ceiling.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    value = os.urandom(size)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        began = time.monotonic()
        one = 0
        while time.monotonic() - began < seconds:  # one at a time, each acknowledged
            await producer.send_and_wait(topic, value, key=str(one).encode())
            one += 1
        one_by_one = one / (time.monotonic() - began)
        began = time.monotonic()
        sent = [await producer.send(topic, value, key=str(i).encode()) for i in range(messages)]
        await asyncio.gather(*sent)
        produced = messages / (time.monotonic() - began)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        total = messages + one
        got = 0
        began = time.monotonic()
        while got < total and time.monotonic() - began < 60:
            batch = await consumer.getmany(timeout_ms=500, max_records=5_000)
            got += sum(len(v) for v in batch.values())
        consumed = got / (time.monotonic() - began)
    finally:
        await consumer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    except Exception:  # noqa: S110 - a leftover bench topic is harmless
        pass
    finally:
        await admin.close()
    return {
        "message_bytes": size,
        "produce_acked_one_by_one_per_second": round(one_by_one, 1),
        "produce_batched_per_second": round(produced, 1),
        "consume_per_second": round(consumed, 1),
    }


async def mongodb(uri: str, seconds: float, concurrency: int) -> dict[str, Any]:
    client = make_client(uri, "bench-ceiling")
    db = client[BENCH_DB]
    rows = db[f"rows_{uuid.uuid4().hex[:8]}"]
    outbox = db[f"outbox_{uuid.uuid4().hex[:8]}"]
    doc = {"payload": "x" * 512, "at": datetime.now(UTC)}
    try:
        await rows.insert_one({"_id": "warm", **doc})
        await outbox.insert_one({"_id": "warm", **doc})

        async def insert(i: int) -> None:
            await rows.insert_one({"_id": f"i{i}", **doc})

        async def find(i: int) -> None:
            await rows.find_one({"_id": f"i{i % 50}"})

        async def transaction(i: int) -> None:
            async with client.start_session() as session, await session.start_transaction():
                await rows.insert_one({"_id": f"t{i}", **doc}, session=session)
                await outbox.insert_one({"_id": f"t{i}", **doc}, session=session)

        inserted = await timed(seconds, concurrency, insert)
        found = await timed(seconds, concurrency, find)
        transactions = await timed(seconds, concurrency, transaction)
        return {
            "concurrency": concurrency,
            "insert": inserted,
            "find_by_id": found,
            "transaction_two_inserts": transactions,
        }
    finally:
        await rows.drop()
        await outbox.drop()
        await client.close()


async def s3(endpoints: Endpoints, seconds: float, concurrency: int) -> dict[str, Any]:
    client = Minio(
        endpoints.s3_host_port,
        access_key=endpoints.s3_access_key,
        secret_key=endpoints.s3_secret_key,
        secure=endpoints.s3_secure,
        region="us-east-1",
    )
    if not await asyncio.to_thread(client.bucket_exists, BENCH_BUCKET):
        await asyncio.to_thread(client.make_bucket, BENCH_BUCKET)
    body = os.urandom(64 * 1024)
    prefix = uuid.uuid4().hex[:8]
    keys: list[str] = []

    def put_sync(i: int) -> None:
        key = f"{prefix}/{i}"
        client.put_object(BENCH_BUCKET, key, io.BytesIO(body), len(body))
        keys.append(key)

    def get_sync(i: int) -> None:
        response = client.get_object(BENCH_BUCKET, keys[i % len(keys)])
        try:
            response.read()
        finally:
            response.close()
            response.release_conn()

    async def put(i: int) -> None:
        await asyncio.to_thread(put_sync, i)

    async def get(i: int) -> None:
        await asyncio.to_thread(get_sync, i)

    try:
        put_rate = await timed(seconds, concurrency, put)
        get_rate = await timed(seconds, concurrency, get)
    finally:
        for key in keys:
            await asyncio.to_thread(client.remove_object, BENCH_BUCKET, key)
    return {"object_bytes": len(body), "concurrency": concurrency, "put": put_rate, "get": get_rate}


async def measure(
    endpoints: Endpoints, seconds: float = 4.0, concurrency: int = 8
) -> dict[str, Any]:
    return {
        "kafka": await kafka(endpoints.kafka_bootstrap, seconds, messages=int(1_000 * seconds)),
        "mongodb": await mongodb(endpoints.mongodb_uri, seconds, concurrency),
        "s3": await s3(endpoints, seconds, concurrency),
    }
