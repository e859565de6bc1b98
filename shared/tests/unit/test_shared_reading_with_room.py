"""The consumer's reader skips partitions whose lane is full, losing nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition
from opr_shared.messaging.lanes import PartitionLanes
from opr_shared.runtime import read_partitions_with_room

A = TopicPartition("identity.events", 0)
B = TopicPartition("identity.events", 1)


class FetchedRecords:
    """What an aiokafka consumer hands over: its fetched records, a partition at a
    time in the order they were fetched; ``getone(*partitions)`` only from those."""

    def __init__(self, fetched: dict[TopicPartition, list[str]]) -> None:
        self.buffered = {tp: list(records) for tp, records in fetched.items()}
        self.arrived = asyncio.Event()
        self.reads: list[tuple[TopicPartition, ...]] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.buffered)

    def fetch(self, tp: TopicPartition, record: str) -> None:
        self.buffered[tp].append(record)
        self.arrived.set()

    async def getone(self, *partitions: TopicPartition) -> tuple[TopicPartition, str]:
        self.reads.append(partitions)
        while True:
            for tp, records in self.buffered.items():
                if records and (not partitions or tp in partitions):
                    return tp, records.pop(0)
            self.arrived.clear()
            await self.arrived.wait()


def blocked_lanes(depth: int) -> tuple[PartitionLanes[str], asyncio.Event, list[str]]:
    release = asyncio.Event()
    handled: list[str] = []

    async def handle(batch: list[str]) -> None:
        await release.wait()
        handled.extend(batch)

    async def commit(partition: TopicPartition, offset: int) -> None:
        return None

    return PartitionLanes(handle, commit, depth=depth), release, handled


async def fill(lanes: PartitionLanes[str], tp: TopicPartition, count: int) -> None:
    for offset in range(count):
        await asyncio.wait_for(lanes.submit(tp, offset, f"{tp.partition}-{offset}"), 1)
        await asyncio.sleep(0)


async def test_records_of_a_full_lane_stay_fetched_while_others_are_read() -> None:
    lanes, release, _ = blocked_lanes(depth=2)
    consumer: Any = FetchedRecords({A: ["a1", "a2"], B: ["b1"]})
    read_partitions_with_room(consumer, lanes)
    await fill(lanes, A, 3)  # one in hand, two queued: full
    assert lanes.full(A)

    assert await asyncio.wait_for(consumer.getone(), 1) == (B, "b1")
    assert consumer.reads[-1] == (B,)
    assert consumer.buffered[A] == ["a1", "a2"]  # untouched, in order
    release.set()
    await lanes.close()


async def test_with_every_lane_full_the_reader_waits_for_room() -> None:
    lanes, release, _ = blocked_lanes(depth=1)
    consumer: Any = FetchedRecords({A: ["a1"], B: ["b1"]})
    read_partitions_with_room(consumer, lanes)
    await fill(lanes, A, 2)
    await fill(lanes, B, 2)
    reading = asyncio.create_task(consumer.getone())
    await asyncio.sleep(0.05)
    assert not reading.done()
    assert consumer.buffered == {A: ["a1"], B: ["b1"]}
    release.set()  # the lanes take their queued records: room
    got = await asyncio.wait_for(reading, 1)
    assert got in {(A, "a1"), (B, "b1")}
    await lanes.close()


async def test_a_full_lane_s_record_is_read_once_the_lane_has_room() -> None:
    lanes, release, _ = blocked_lanes(depth=1)
    consumer: Any = FetchedRecords({A: ["a1"], B: []})
    read_partitions_with_room(consumer, lanes)
    await fill(lanes, A, 2)
    reading = asyncio.create_task(consumer.getone())
    await asyncio.sleep(0.05)
    assert not reading.done()  # B has room but nothing fetched; A's record waits
    release.set()
    assert await asyncio.wait_for(reading, 1) == (A, "a1")
    assert consumer.buffered == {A: [], B: []}
    await lanes.close()


async def test_with_room_everywhere_the_reader_reads_as_before() -> None:
    lanes, _, _ = blocked_lanes(depth=4)
    consumer: Any = FetchedRecords({A: ["a1"], B: ["b1"]})
    read_partitions_with_room(consumer, lanes)
    assert await consumer.getone() == (A, "a1")
    assert consumer.reads == [()]
    assert await consumer.getone(B) == (B, "b1")  # explicit partitions pass through
    await lanes.close()
