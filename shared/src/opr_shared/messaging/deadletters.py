"""Inspecting and replaying a service's dead letters (``<service>.events.dlq``).

Replaying feeds each dead letter back through the service's own consumer
pipeline (so the idempotency guard still applies) and records the outcome per
dead-letter offset, so a second replay does not retry what already succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from opr_shared.events.envelope import HEADER_EVENT_ID, HEADER_EVENT_TYPE, dead_letter_topic_for
from opr_shared.messaging.consumer import DLQ_HEADER_PREFIX, EventConsumer, Outcome, Record

REPLAYS = "dead_letter_replays"
# How long a poll of the dead-letter topic must stay empty before the listing ends.
IDLE_POLL_MS = 1000


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    record: Record  # the original record, as it was on its source topic
    error: str
    attempts: int
    failed_at: str

    @property
    def id(self) -> str:
        return f"{self.partition}:{self.offset}"

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source_topic": self.record.topic,
            "source_partition": self.record.partition,
            "source_offset": self.record.offset,
            "event_type": self.record.header(HEADER_EVENT_TYPE),
            "event_id": self.record.header(HEADER_EVENT_ID),
            "error": self.error,
            "attempts": self.attempts,
            "failed_at": self.failed_at,
        }


def _dead_letter(
    partition: int, offset: int, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
) -> DeadLetter:
    h = dict(headers)

    def text(name: str, default: str = "") -> str:
        raw = h.get(name)
        return raw.decode(errors="replace") if raw is not None else default

    original = Record(
        topic=text("dlq_source_topic", "?"),
        partition=int(text("dlq_source_partition", "-1")),
        offset=int(text("dlq_source_offset", "-1")),
        key=key,
        value=value,
        headers={k: v for k, v in h.items() if not k.startswith(DLQ_HEADER_PREFIX)},
    )
    return DeadLetter(
        partition,
        offset,
        original,
        text("dlq_error"),
        int(text("dlq_attempts", "0")),
        text("dlq_failed_at"),
    )


async def read_dead_letters(
    bootstrap_servers: str,
    service: str,
    limit: int = 1000,
    options: dict[str, Any] | None = None,
) -> list[DeadLetter]:
    """Every dead letter currently in the service's DLQ topic (oldest first, up to ``limit``)."""
    topic = dead_letter_topic_for(service)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        **(options or {}),
    )
    await consumer.start()
    try:
        if topic not in await consumer.topics():  # also refreshes the metadata
            return []
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        # The end offsets are only a lower bound: the local broker (Tansu) reports a
        # partition's end before its latest batches until the next write lands there,
        # so read on until a poll brings nothing and every partition is past them.
        ends = await consumer.end_offsets(tps)
        found: list[DeadLetter] = []
        while len(found) < limit:
            batch = await consumer.getmany(*tps, timeout_ms=IDLE_POLL_MS)
            if not batch:
                positions = [await consumer.position(tp) for tp in tps]
                if all(p >= ends[tp] for p, tp in zip(positions, tps, strict=True)):
                    break
                continue
            for tp, messages in batch.items():
                for m in messages:
                    if m.value is not None:
                        found.append(
                            _dead_letter(tp.partition, m.offset, m.key, m.value, list(m.headers))
                        )
        found.sort(key=lambda d: d.record.header("dlq_failed_at") or d.failed_at)
        return found[:limit]
    finally:
        await consumer.stop()


async def replay_dead_letters(
    consumer: EventConsumer,
    bootstrap_servers: str,
    *,
    only: set[str] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Run each dead letter through ``consumer`` again; count the outcomes."""
    db = consumer.uow.db
    counts: dict[str, int] = {}
    for dead in await read_dead_letters(bootstrap_servers, consumer.service, options=options):
        if only is not None and dead.id not in only:
            continue
        done = await db[REPLAYS].find_one(
            {"_id": dead.id, "outcome": {"$ne": Outcome.FAILED.value}}
        )
        if done is not None:
            counts["already_replayed"] = counts.get("already_replayed", 0) + 1
            continue
        outcome = await consumer.handle(dead.record, dead_letter_on_failure=False)
        await db[REPLAYS].update_one(
            {"_id": dead.id},
            {
                "$set": {"outcome": outcome.value, "replayed_at": datetime.now(UTC)},
                "$inc": {"tries": 1},
            },
            upsert=True,
        )
        counts[outcome.value] = counts.get(outcome.value, 0) + 1
    return counts
