"""Records of different partitions handled at once, each partition's in order.

A service reads every topic it consumes through one Kafka consumer. Handling
one record at a time made its slowest step (a database transaction per event)
the pace of the whole service. Here each assigned partition gets a *lane*: a
short queue and a task that handles its records in order, the ones waiting
together (up to ``batch_size``) handed over as one batch (the consumer handles a
batch in one database transaction), and commits
the partition's offset once for a burst (the records queued behind it, up to
``commit_every``) and at most once per ``commit_interval`` seconds: a record
handled sooner after the last commit is committed with those that follow it, or
when the interval is up. Lanes run side by side, so a service handles
as many records at once as it has partitions assigned, and the order that
matters (one student's events share a key, hence a partition) is kept.

- A record whose handling fails on infrastructure (the database unreachable) is
  retried in its lane, with back-off, until it succeeds or the lane stops; later
  records of that partition wait behind it. Nothing is skipped.
- Each commit is a write on the broker (two objects in the local broker's
  storage), and handling is idempotent: a record handled but not yet committed
  when the service dies is read again and found already processed. Committing a
  partition at most once a second instead of after every record costs at most a
  second of such re-reads after a crash.
- When partitions are revoked (a rebalance) or the service stops, their lanes
  finish the batch in hand, commit what they handled and drop what is queued,
  uncommitted: the next owner of the partition reads those records again from
  the committed offset, and handling is idempotent.
- A full lane makes :meth:`PartitionLanes.submit` wait. A reader should not
  hand over a record for a full lane (:meth:`PartitionLanes.full`) but read the
  partitions with room meanwhile; :meth:`PartitionLanes.wait_for_room` returns
  once a full lane has taken a record. Otherwise one slow partition holds up
  every other: the notifier, thousands of invitations behind after the
  admissions import, handled its other topics one full lane at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

from aiokafka import TopicPartition

log = logging.getLogger(__name__)

T = TypeVar("T")
Commit = Callable[[TopicPartition, int], Awaitable[None]]
Handle = Callable[[list[T]], Awaitable[object]]


class Lane(Generic[T]):
    """One partition's queue and the task working through it."""

    def __init__(
        self,
        partition: TopicPartition,
        handle: Handle[T],
        commit: Commit,
        *,
        depth: int,
        batch_size: int,
        commit_every: int,
        commit_interval: float,
        retry_backoff_seconds: float,
        max_backoff_seconds: float,
        on_room: Callable[[], None] = lambda: None,
    ) -> None:
        self.partition = partition
        self._handle = handle
        self._commit = commit
        self._on_room = on_room
        self._queue: asyncio.Queue[tuple[int, T] | None] = asyncio.Queue(depth)
        self._batch_size = batch_size
        self._commit_every = commit_every
        self._commit_interval = commit_interval
        self._stopping = asyncio.Event()
        self._backoff = retry_backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._task = asyncio.create_task(
            self._run(), name=f"lane-{partition.topic}-{partition.partition}"
        )

    @property
    def full(self) -> bool:
        return self._queue.full()

    async def put(self, offset: int, item: T) -> None:
        await self._queue.put((offset, item))

    def _taken(self, entry: tuple[int, T] | None) -> tuple[int, T] | None:
        """``entry``, just taken from the queue: if the queue was full, it has room now."""
        if self._queue.qsize() == self._queue.maxsize - 1:
            self._on_room()
        return entry

    async def stop(self) -> None:
        """Finish the batch in hand; drop the queued records (they stay uncommitted)."""
        self._stopping.set()
        while not self._queue.empty():
            self._queue.get_nowait()
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        done: int | None = None  # the offset to commit: after the last handled record
        since_commit = 0
        committed_at = -float("inf")
        try:
            while True:
                if done is None:
                    entry = self._taken(await self._queue.get())
                elif self._queue.qsize() and since_commit < self._commit_every:
                    # A burst: one commit covers several.
                    entry = self._taken(self._queue.get_nowait())
                else:
                    wait = committed_at + self._commit_interval - loop.time()
                    if wait <= 0 or since_commit >= self._commit_every:
                        await self._commit_quietly(done)
                        done, since_commit, committed_at = None, 0, loop.time()
                        continue
                    try:
                        # Committed with the records that come before the interval is up.
                        entry = self._taken(await asyncio.wait_for(self._queue.get(), wait))
                    except TimeoutError:
                        continue
                if entry is None or self._stopping.is_set():
                    return
                offset, item = entry
                batch = [item]
                while len(batch) < self._batch_size and self._queue.qsize():
                    waiting = self._taken(self._queue.get_nowait())
                    if waiting is None:
                        return  # stopping
                    offset, item = waiting
                    batch.append(item)
                if not await self._handle_until_done(batch):
                    return
                done, since_commit = offset + 1, since_commit + len(batch)
        finally:
            if done is not None:
                await self._commit_quietly(done)

    async def _commit_quietly(self, offset: int) -> None:
        try:
            await self._commit(self.partition, offset)
        except Exception:
            # Handled but not committed: read once more later, which is harmless.
            log.exception("offset not committed", extra={"topic": self.partition.topic})

    async def _handle_until_done(self, batch: list[T]) -> bool:
        delay = self._backoff
        while True:
            try:
                await self._handle(batch)
                return True
            except Exception:
                log.exception(
                    "record not handled; retrying",
                    extra={"topic": self.partition.topic, "partition": self.partition.partition},
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return False
            delay = min(delay * 2, self._max_backoff)


class PartitionLanes(Generic[T]):
    """Dispatches records to per-partition lanes (see the module's docstring)."""

    def __init__(
        self,
        handle: Handle[T],
        commit: Commit,
        *,
        depth: int = 16,
        batch_size: int = 1,
        commit_every: int = 16,
        commit_interval: float = 0.0,
        retry_backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
    ) -> None:
        self._new_lane = functools.partial(
            Lane[T],
            handle=handle,
            commit=commit,
            depth=max(depth, batch_size),  # a batch is drawn from what is queued
            batch_size=batch_size,
            commit_every=commit_every,
            commit_interval=commit_interval,
            retry_backoff_seconds=retry_backoff_seconds,
            max_backoff_seconds=max_backoff_seconds,
            on_room=self._room_made,
        )
        self._lanes: dict[TopicPartition, Lane[T]] = {}
        self._closed = False
        self._room = asyncio.Event()

    @property
    def partitions(self) -> list[TopicPartition]:
        return list(self._lanes)

    def full(self, partition: TopicPartition) -> bool:
        """Whether a record of ``partition`` would have to wait for room in its lane."""
        lane = self._lanes.get(partition)
        return lane is not None and lane.full

    async def wait_for_room(self) -> None:
        """Return once a lane that was full has taken a record (at once if one
        has since the last call)."""
        await self._room.wait()
        self._room.clear()

    def _room_made(self) -> None:
        self._room.set()

    async def submit(self, partition: TopicPartition, offset: int, item: T) -> None:
        """Queue a record on its partition's lane (waits while that lane is full)."""
        if self._closed:
            return  # stopping: left uncommitted, read again after the restart
        lane = self._lanes.get(partition)
        if lane is None:
            lane = self._lanes[partition] = self._new_lane(partition)
        await lane.put(offset, item)

    async def revoke(self, partitions: Iterable[TopicPartition]) -> None:
        """Stop the lanes of partitions this consumer no longer owns."""
        lanes = [self._lanes.pop(p) for p in partitions if p in self._lanes]
        self._room.set()  # a reader waiting on these lanes looks again
        await asyncio.gather(*(lane.stop() for lane in lanes))

    async def close(self) -> None:
        """Stop every lane; later submissions are dropped (uncommitted)."""
        self._closed = True
        await self.revoke(list(self._lanes))
