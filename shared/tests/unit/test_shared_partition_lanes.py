"""Per-partition lanes: partitions side by side, each in order, commit after handling."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from aiokafka import TopicPartition
from opr_shared.messaging.lanes import PartitionLanes

A = TopicPartition("registration.events", 0)
B = TopicPartition("registration.events", 1)
T = TypeVar("T")


class Recorder:
    def __init__(self) -> None:
        self.handled: list[tuple[TopicPartition, int]] = []
        self.commits: list[tuple[TopicPartition, int]] = []

    async def commit(self, partition: TopicPartition, offset: int) -> None:
        self.commits.append((partition, offset))


def each(handle: Callable[[T], Awaitable[None]]) -> Callable[[list[T]], Awaitable[None]]:
    """A lane hands over batches; most of these tests follow single records."""

    async def handle_batch(batch: list[T]) -> None:
        for item in batch:
            await handle(item)

    return handle_batch


async def settle(condition: object, timeout: float = 5.0) -> None:
    async def wait() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.005)

    await asyncio.wait_for(wait(), timeout)


async def test_each_partition_in_order_and_committed_after_each_record() -> None:
    seen = Recorder()

    async def handle(item: tuple[TopicPartition, int]) -> None:
        await asyncio.sleep(0.001 * (item[1] % 3))  # uneven work
        seen.handled.append(item)

    lanes: PartitionLanes[tuple[TopicPartition, int]] = PartitionLanes(
        each(handle), seen.commit, commit_every=1
    )
    for offset in range(20):
        for partition in (A, B):
            await lanes.submit(partition, offset, (partition, offset))
    await settle(lambda: len(seen.commits) == 40)
    for partition in (A, B):
        assert [o for p, o in seen.handled if p == partition] == list(range(20))
        assert [o for p, o in seen.commits if p == partition] == list(range(1, 21))
    await lanes.close()


async def test_a_slow_partition_does_not_hold_the_others() -> None:
    release = asyncio.Event()
    seen = Recorder()

    async def handle(item: tuple[TopicPartition, int]) -> None:
        if item[0] == A:
            await release.wait()  # A's record waits until B's is handled
        seen.handled.append(item)
        if item[0] == B:
            release.set()

    lanes: PartitionLanes[tuple[TopicPartition, int]] = PartitionLanes(each(handle), seen.commit)
    await lanes.submit(A, 7, (A, 7))
    await lanes.submit(B, 3, (B, 3))
    await settle(lambda: len(seen.commits) == 2)
    assert seen.handled == [(B, 3), (A, 7)]
    await lanes.close()


async def test_a_failing_record_is_retried_and_later_ones_wait_behind_it() -> None:
    seen = Recorder()
    failures = {"left": 3}

    async def handle(item: int) -> None:
        if item == 0 and failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("database unreachable")
        seen.handled.append((A, item))

    lanes: PartitionLanes[int] = PartitionLanes(
        each(handle),
        seen.commit,
        commit_every=1,
        retry_backoff_seconds=0.01,
        max_backoff_seconds=0.02,
    )
    await lanes.submit(A, 0, 0)
    await lanes.submit(A, 1, 1)
    await settle(lambda: len(seen.commits) == 2)
    assert failures["left"] == 0
    assert seen.handled == [(A, 0), (A, 1)]
    assert seen.commits == [(A, 1), (A, 2)]
    await lanes.close()


async def test_revoking_finishes_the_record_in_hand_and_leaves_the_queue_uncommitted() -> None:
    seen = Recorder()
    started = asyncio.Event()
    go_on = asyncio.Event()

    async def handle(item: int) -> None:
        if item == 0:
            started.set()
            await go_on.wait()
        seen.handled.append((A, item))

    lanes: PartitionLanes[int] = PartitionLanes(each(handle), seen.commit)
    for offset in range(5):
        await lanes.submit(A, offset, offset)
    await started.wait()
    revoking = asyncio.create_task(lanes.revoke([A]))
    await asyncio.sleep(0.02)
    assert not revoking.done(), "revoke returned while a record was still being handled"
    go_on.set()
    await asyncio.wait_for(revoking, 5)
    assert seen.handled == [(A, 0)]
    assert seen.commits == [(A, 1)]  # 1..4 stay uncommitted: the next owner reads them
    assert lanes.partitions == []


async def test_a_revoked_lane_stuck_on_a_failing_record_stops_without_committing_it() -> None:
    seen = Recorder()

    async def handle(item: int) -> None:
        raise ConnectionError("database unreachable")

    lanes: PartitionLanes[int] = PartitionLanes(
        each(handle), seen.commit, retry_backoff_seconds=30, max_backoff_seconds=30
    )
    await lanes.submit(A, 0, 0)
    await asyncio.sleep(0.02)
    await asyncio.wait_for(lanes.revoke([A]), 2)  # does not sit out the 30 s back-off
    assert seen.commits == []


async def test_after_close_records_are_dropped_uncommitted() -> None:
    seen = Recorder()

    async def handle(item: int) -> None:
        seen.handled.append((A, item))

    lanes: PartitionLanes[int] = PartitionLanes(each(handle), seen.commit)
    await lanes.close()
    await lanes.submit(A, 0, 0)
    await asyncio.sleep(0.02)
    assert seen.handled == []
    assert seen.commits == []


async def test_a_full_lane_makes_the_reader_wait() -> None:
    seen = Recorder()
    release = asyncio.Event()

    async def handle(item: int) -> None:
        await release.wait()
        seen.handled.append((A, item))

    lanes: PartitionLanes[int] = PartitionLanes(each(handle), seen.commit, depth=2)
    for offset in range(3):  # one in hand, two queued
        await asyncio.wait_for(lanes.submit(A, offset, offset), 1)
    await asyncio.sleep(0.01)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(lanes.submit(A, 3, 3), 0.1)
    release.set()
    await settle(lambda: bool(seen.commits) and seen.commits[-1] == (A, 3))
    assert [o for _, o in seen.handled] == [0, 1, 2]  # the refused submission never queued
    await lanes.close()


async def test_a_burst_is_committed_once_and_a_stopped_lane_commits_what_it_handled() -> None:
    seen = Recorder()
    release = asyncio.Event()

    async def handle(item: int) -> None:
        if item == 0:
            await release.wait()  # the rest of the burst queues up behind it
        seen.handled.append((A, item))

    lanes: PartitionLanes[int] = PartitionLanes(each(handle), seen.commit, depth=32, commit_every=4)
    for offset in range(10):
        await lanes.submit(A, offset, offset)
    release.set()
    await settle(lambda: len(seen.handled) == 10)
    await settle(lambda: bool(seen.commits) and seen.commits[-1] == (A, 10))
    # Every fourth record while others wait behind, then the last one.
    assert seen.commits == [(A, 4), (A, 8), (A, 10)]

    blocked = asyncio.Event()

    async def slow(item: int) -> None:
        if item == 12:
            await blocked.wait()
        seen.handled.append((A, item))

    other: PartitionLanes[int] = PartitionLanes(each(slow), seen.commit, depth=32, commit_every=100)
    for offset in (10, 11, 12, 13):
        await other.submit(A, offset, offset)
    await settle(lambda: (A, 11) in seen.handled)
    revoking = asyncio.create_task(other.revoke([A]))
    await asyncio.sleep(0.01)
    blocked.set()
    await asyncio.wait_for(revoking, 5)
    assert seen.commits[-1] == (A, 13)  # 10..12 handled and committed; 13 left to the next owner
    assert (A, 13) not in seen.handled


async def test_records_handled_within_the_interval_share_one_commit() -> None:
    seen = Recorder()

    async def handle(item: int) -> None:
        seen.handled.append((A, item))

    lanes: PartitionLanes[int] = PartitionLanes(each(handle), seen.commit, commit_interval=0.3)
    await lanes.submit(A, 0, 0)
    await settle(lambda: seen.commits == [(A, 1)])  # the first commit is not held back
    for offset in (1, 2, 3):  # one at a time, each handled before the next arrives
        await lanes.submit(A, offset, offset)
        await settle(lambda offset=offset: (A, offset) in seen.handled)
    assert seen.commits == [(A, 1)]  # within the interval: not yet
    # Once the interval is up, without another record arriving, one commit covers all three.
    await settle(lambda: len(seen.commits) == 2, timeout=2)
    assert seen.commits == [(A, 1), (A, 4)]
    await lanes.close()
    assert seen.commits == [(A, 1), (A, 4)]


async def test_a_lane_stopped_within_the_interval_commits_what_it_handled() -> None:
    seen = Recorder()

    async def handle(item: int) -> None:
        seen.handled.append((A, item))

    lanes: PartitionLanes[int] = PartitionLanes(each(handle), seen.commit, commit_interval=60)
    for offset in (0, 1, 2):
        await lanes.submit(A, offset, offset)
        await settle(lambda offset=offset: (A, offset) in seen.handled)
    assert seen.commits == [(A, 1)]
    await asyncio.wait_for(lanes.revoke([A]), 2)  # does not sit out the interval
    assert seen.commits == [(A, 1), (A, 3)]


async def test_records_waiting_together_are_handed_over_as_one_batch_in_order() -> None:
    seen = Recorder()
    batches: list[list[int]] = []
    started = asyncio.Event()
    release = asyncio.Event()

    async def handle(batch: list[int]) -> None:
        if batch[0] == 0:
            started.set()
            await release.wait()  # the others queue up behind the first record
        batches.append(batch)
        seen.handled += [(A, item) for item in batch]

    lanes: PartitionLanes[int] = PartitionLanes(
        handle, seen.commit, depth=32, batch_size=4, commit_every=100
    )
    await lanes.submit(A, 0, 0)
    await started.wait()
    for offset in range(1, 10):
        await lanes.submit(A, offset, offset)
    release.set()
    await settle(lambda: len(seen.handled) == 10)
    assert batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]
    await settle(lambda: bool(seen.commits) and seen.commits[-1] == (A, 10))
    await lanes.close()


async def test_a_failing_batch_is_retried_whole_and_a_revoked_lane_leaves_it_uncommitted() -> None:
    seen = Recorder()
    calls: list[list[int]] = []
    started = asyncio.Event()

    async def handle(batch: list[int]) -> None:
        calls.append(batch)
        if batch[0] == 0:
            started.set()
            await asyncio.sleep(0.05)
            return
        raise ConnectionError("database unreachable")

    lanes: PartitionLanes[int] = PartitionLanes(
        handle,
        seen.commit,
        batch_size=8,
        commit_every=1,
        retry_backoff_seconds=0.01,
        max_backoff_seconds=0.01,
    )
    await lanes.submit(A, 0, 0)
    await started.wait()
    for offset in range(1, 4):
        await lanes.submit(A, offset, offset)
    await settle(lambda: len(calls) >= 3)
    assert calls[0] == [0]
    assert all(batch == [1, 2, 3] for batch in calls[1:])  # the same batch, whole, in order
    await asyncio.wait_for(lanes.revoke([A]), 2)
    assert seen.commits == [(A, 1)]  # only the record that was handled


async def test_a_full_lane_says_so_and_says_when_it_has_room_again() -> None:
    seen = Recorder()
    gate = asyncio.Event()
    one_at_a_time = True

    async def handle(item: int) -> None:
        await gate.wait()
        if one_at_a_time:
            gate.clear()  # one record per opening
        seen.handled.append((A, item))

    lanes: PartitionLanes[int] = PartitionLanes(each(handle), seen.commit, depth=3)
    assert not lanes.full(A)  # no lane yet: room
    for offset in range(4):  # one in hand, three queued
        await asyncio.wait_for(lanes.submit(A, offset, offset), 1)
        await asyncio.sleep(0)
    assert lanes.full(A)
    assert not lanes.full(B)
    waiting = asyncio.create_task(lanes.wait_for_room())
    await asyncio.sleep(0.02)
    assert not waiting.done()
    gate.set()  # 0 handled, 1 taken: room for one
    await asyncio.wait_for(waiting, 1)
    assert not lanes.full(A)
    assert seen.handled == [(A, 0)]
    await lanes.submit(A, 4, 4)  # full again
    assert lanes.full(A)
    one_at_a_time = False
    gate.set()
    await settle(lambda: len(seen.handled) == 5)
    assert [o for _, o in seen.handled] == [0, 1, 2, 3, 4]
    await lanes.close()


async def test_a_lane_that_was_not_full_makes_no_room_call() -> None:
    seen = Recorder()

    async def handle(item: int) -> None:
        seen.handled.append((A, item))

    lanes: PartitionLanes[int] = PartitionLanes(each(handle), seen.commit, depth=4)
    for offset in range(3):
        await lanes.submit(A, offset, offset)
    await settle(lambda: len(seen.handled) == 3)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(lanes.wait_for_room(), 0.05)
    await lanes.close()


async def test_revoking_lanes_wakes_a_reader_waiting_for_room() -> None:
    seen = Recorder()
    release = asyncio.Event()

    async def handle(item: int) -> None:
        await release.wait()
        seen.handled.append((A, item))

    lanes: PartitionLanes[int] = PartitionLanes(each(handle), seen.commit, depth=1)
    for offset in range(2):
        await lanes.submit(A, offset, offset)
        await asyncio.sleep(0)
    assert lanes.full(A)
    waiting = asyncio.create_task(lanes.wait_for_room())
    revoking = asyncio.create_task(lanes.revoke([A]))
    await asyncio.wait_for(waiting, 1)  # before the lane's record in hand is done
    assert not lanes.full(A)  # no lane any more
    release.set()
    await asyncio.wait_for(revoking, 1)
