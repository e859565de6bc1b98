"""Watching Kafka topics from tests, as a downstream team would."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

RecordFilter = Callable[[ConsumerRecord[bytes, bytes]], bool]


async def read_topic(
    bootstrap: str,
    topic: str,
    want: RecordFilter,
    *,
    count: int = 1,
    timeout: float = 30.0,
    settle: float = 0.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Records of ``topic``, read from the beginning, for which ``want`` holds.

    Returns once ``count`` matched (then keeps reading for ``settle`` seconds, to
    catch extra copies) or when ``timeout`` runs out, whatever was found by then.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-reader-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    found: list[ConsumerRecord[bytes, bytes]] = []
    loop = asyncio.get_running_loop()
    try:
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for messages in batch.values():
                found.extend(m for m in messages if want(m))
            if len(found) >= count:
                deadline = min(deadline, loop.time() + settle)
                if settle == 0:
                    break
    finally:
        await consumer.stop()
    return found
