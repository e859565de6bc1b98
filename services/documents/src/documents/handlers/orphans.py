"""Sweeping files that no record names.

An upload writes its file to the bucket first and commits its record after
(``handlers.uploads``). When that transaction fails for good (the database went
away, the service stopped in between) the file stays in the bucket, named by no
record: never listed, never served, but kept, and it may be a scan of someone's
identity card. This worker deletes such files once they are old enough that no
upload can still be committing them.

A file is removed only if its key has the shape the service writes
(``documents/<student_no>/<id>``, ``photos/<student_no>/<id>``) and no record
with that id names that key. Anything else in the bucket is left alone. Running
it on several replicas at once is harmless: a second delete of a deleted file
changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opr_shared.store.mongo import Document
from opr_shared.store.objects import ObjectStore
from pymongo.asynchronous.database import AsyncDatabase

from documents.store import DOCUMENTS, PHOTOS

log = logging.getLogger(__name__)

# Key prefix → the collection whose records name those files.
OWNED = {"documents/": DOCUMENTS, "photos/": PHOTOS}
LOOKUP_BATCH = 500


def _utc_now() -> datetime:
    return datetime.now(UTC)


def record_id(prefix: str, key: str) -> str | None:
    """The record id a key of the service's own shape names, else None."""
    parts = key[len(prefix) :].split("/")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[1]


@dataclass(frozen=True)
class SweepResult:
    examined: int
    removed: list[str]


class OrphanSweeper:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        objects: ObjectStore,
        *,
        every_seconds: float,
        grace: timedelta,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.db = db
        self.objects = objects
        self.every_seconds = every_seconds
        self.grace = grace
        self.clock = clock
        self._stopping = asyncio.Event()

    async def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.every_seconds)
            if self._stopping.is_set():
                return
            try:
                result = await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sweeping unreferenced files failed; trying again later")
                continue
            if result.removed:
                log.info(
                    "removed files no record names",
                    extra={"removed": len(result.removed), "examined": result.examined},
                )

    async def sweep(self) -> SweepResult:
        """One pass over the bucket; answers what was looked at and removed."""
        cutoff = self.clock() - self.grace
        examined = 0
        removed: list[str] = []
        for prefix, collection in OWNED.items():
            old = [
                (key, ident)
                for key, written in await self.objects.listed(prefix)
                if written < cutoff and (ident := record_id(prefix, key)) is not None
            ]
            examined += len(old)
            for start in range(0, len(old), LOOKUP_BATCH):
                batch = old[start : start + LOOKUP_BATCH]
                named = {
                    row["object_key"]
                    async for row in self.db[collection].find(
                        {"_id": {"$in": [ident for _, ident in batch]}}, {"object_key": 1}
                    )
                    if "object_key" in row
                }
                for key, _ in batch:
                    if key not in named:
                        await self.objects.remove(key)
                        removed.append(key)
        return SweepResult(examined=examined, removed=removed)
