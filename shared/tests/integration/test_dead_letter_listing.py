"""The admin listing of dead letters shows every dead letter at once, the one
written last included (the local broker's end offset can trail a partition's
last batch until the next write lands there)."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaProducer
from opr_shared.events.envelope import dead_letter_topic_for
from opr_shared.localinfra import Endpoints
from opr_shared.messaging.deadletters import read_dead_letters

pytestmark = pytest.mark.integration


async def test_every_dead_letter_is_listed_the_last_one_included(infra: Endpoints) -> None:
    service = "card"
    topic = dead_letter_topic_for(service)
    key = f"2{uuid.uuid4().int % 10**7:07d}".encode()
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for n in range(4):
            await producer.send_and_wait(
                topic,
                f"poison {n}".encode(),
                key=key,
                partition=0,
                headers=[
                    ("dlq_error", b"undecodable"),
                    ("dlq_source_topic", b"identity.events"),
                    ("dlq_source_partition", b"0"),
                    ("dlq_source_offset", str(n).encode()),
                    ("dlq_attempts", b"1"),
                    ("dlq_failed_at", f"2026-12-01T10:00:0{n}+00:00".encode()),
                ],
            )
    finally:
        await producer.stop()

    listed = await read_dead_letters(infra.kafka_bootstrap, service)

    mine = [d for d in listed if d.record.key == key]
    assert [d.record.value for d in mine] == [f"poison {n}".encode() for n in range(4)]
    assert [d.record.offset for d in mine] == [0, 1, 2, 3]
