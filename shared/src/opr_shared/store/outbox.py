"""The outbox relay: publishes committed outbox rows to Kafka, in order.

- Woken by a change stream on the outbox (inserts), with a periodic sweep as a
  fallback for when the stream is unavailable or a wake-up was missed.
- One relay per service publishes at a time (a lease row in MongoDB), so the
  rows of one student are published in the order they were committed even with
  several replicas.
- A batch is published in commit order; rows are marked ``sent`` only after the
  broker acknowledged them (acks=all). A crash between the two publishes the
  row again after restart: consumers deduplicate on ``event_id``.
- With ``linger_seconds``, a relay woken by a commit waits that long before it
  reads the outbox, so the rows of the commits meanwhile go out together: fewer
  passes (each a read and a write on the database) and fewer, larger batches on
  the broker, each row that much later.
- Failures back off exponentially up to a cap and are retried forever: a row is
  never dropped, and a row that cannot be sent holds back the rows after it
  (head-of-line), which is what keeps per-student order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from prometheus_client import Counter, Gauge
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from opr_shared.store.mongo import OUTBOX, Document

log = logging.getLogger(__name__)

LEASES = "leases"

PUBLISHED = Counter("outbox_published_total", "Outbox rows published to Kafka", ["service"])
FAILURES = Counter("outbox_publish_failures_total", "Failed outbox publish attempts", ["service"])
PENDING = Gauge("outbox_pending", "Outbox rows waiting to be published", ["service"])


class KafkaSender(Protocol):
    """What the relay needs from a Kafka producer (aiokafka's fits)."""

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]: ...


class OutboxRelay:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        sender: KafkaSender,
        *,
        service: str,
        batch_size: int = 200,
        sweep_seconds: float = 2.0,
        max_backoff_seconds: float = 30.0,
        lease_seconds: float = 15.0,
        owner: str | None = None,
        linger_seconds: float = 0.0,
    ) -> None:
        self.db = db
        self.sender = sender
        self.service = service
        self.batch_size = batch_size
        self.sweep_seconds = sweep_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.lease_seconds = lease_seconds
        self.linger_seconds = linger_seconds
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._renew_after = 0.0  # monotonic time before which the lease is surely ours

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Relay until :meth:`stop`; combine with :meth:`watch` for prompt wake-ups."""
        backoff = 0.0
        while not self._stopping.is_set():
            try:
                if not await self.hold_lease():
                    await self._sleep(self.sweep_seconds)
                    continue
                published = await self.relay_once()
                backoff = 0.0
                if published >= self.batch_size:
                    continue
                if await self._sleep(self.sweep_seconds) and self.linger_seconds > 0:
                    # Woken by a commit: rows committed meanwhile go in the same pass.
                    await self._sleep(self.linger_seconds, wakeable=False)
                    self._wake.clear()  # the pass below reads them all
            except asyncio.CancelledError:
                raise
            except Exception:
                FAILURES.labels(self.service).inc()
                backoff = min(max(backoff * 2, 0.2), self.max_backoff_seconds)
                log.exception("outbox relay failed; retrying", extra={"retry_in_s": backoff})
                await self._sleep(backoff, wakeable=False)

    async def watch(self) -> None:
        """Wake the relay whenever a row is inserted (change stream), until stopped."""
        while not self._stopping.is_set():
            try:
                async with await self.db[OUTBOX].watch(
                    [{"$match": {"operationType": "insert"}}]
                ) as stream:
                    async for _change in stream:
                        self._wake.set()
                        if self._stopping.is_set():
                            return
            except asyncio.CancelledError:
                raise
            except PyMongoError as exc:
                log.warning("outbox change stream unavailable, relying on sweeps: %s", exc)
                await self._sleep(self.sweep_seconds * 5, wakeable=False)

    async def hold_lease(self) -> bool:
        """Take or renew the relay lease; True while this relay holds it.

        A lease renewed less than a third of its life ago is not renewed again:
        the relay runs after every commit, and one write per pass would double
        what publishing costs the database.
        """
        if time.monotonic() < self._renew_after:
            return True
        self._renew_after = 0.0
        now = datetime.now(UTC)
        try:
            row = await self.db[LEASES].find_one_and_update(
                {
                    "_id": "outbox-relay",
                    "$or": [{"owner": self.owner}, {"expires_at": {"$lt": now}}],
                },
                {
                    "$set": {
                        "owner": self.owner,
                        "expires_at": now + timedelta(seconds=self.lease_seconds),
                    }
                },
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return False  # another replica holds a live lease
        held = row is not None and row.get("owner") == self.owner
        if held:
            self._renew_after = time.monotonic() + self.lease_seconds / 3
        return held

    async def release_lease(self) -> None:
        self._renew_after = 0.0
        with contextlib.suppress(PyMongoError):
            await self.db[LEASES].delete_one({"_id": "outbox-relay", "owner": self.owner})

    async def relay_once(self) -> int:
        """Publish one batch of pending rows in commit order; return how many were sent."""
        rows = (
            await self.db[OUTBOX]
            .find({"status": "pending"})
            .sort([("seq", ASCENDING)])
            .limit(self.batch_size)
            .to_list()
        )
        if not rows:
            PENDING.labels(self.service).set(0)
            return 0
        futures = []
        for row in rows:
            headers = [(k, str(v).encode()) for k, v in row["headers"].items()]
            futures.append(
                await self.sender.send(
                    row["topic"], bytes(row["value"]), row["key"].encode(), headers=headers
                )
            )
        results = await asyncio.gather(*futures, return_exceptions=True)
        sent_ids: list[Any] = []
        first_error: BaseException | None = None
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BaseException):
                first_error = first_error or result
                break  # keep order: nothing after a failed row counts as sent
            sent_ids.append(row["_id"])
        now = datetime.now(UTC)
        if sent_ids:
            await self.db[OUTBOX].update_many(
                {"_id": {"$in": sent_ids}}, {"$set": {"status": "sent", "sent_at": now}}
            )
            PUBLISHED.labels(self.service).inc(len(sent_ids))
        if first_error is not None:
            failed = rows[len(sent_ids)]
            await self.db[OUTBOX].update_one(
                {"_id": failed["_id"]},
                {"$inc": {"attempts": 1}, "$set": {"last_error": repr(first_error)[:500]}},
            )
            raise first_error
        if len(rows) < self.batch_size:
            PENDING.labels(self.service).set(0)  # all of it went; newer rows wake the relay
        else:
            PENDING.labels(self.service).set(
                await self.db[OUTBOX].count_documents({"status": "pending"})
            )
        return len(sent_ids)

    async def _sleep(self, seconds: float, *, wakeable: bool = True) -> bool:
        """Wait ``seconds``, or less if woken (or stopped); True if woken."""
        waiter = self._wake if wakeable else self._stopping
        woken = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), timeout=seconds)
            woken = True
        if wakeable:
            self._wake.clear()
        return woken
