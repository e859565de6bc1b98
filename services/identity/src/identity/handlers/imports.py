"""Roster imports as jobs whose progress the caller can watch.

Every import (answered at once or run in the background) has a record in
``roster_imports`` updated after each committed chunk. A background import
runs in the process that accepted it; if that process dies, the record stops
moving (``updated_at``). A running record that has not moved for
:data:`STALLED_AFTER` is marked failed when next read, so the caller is told to
import the same roster again, which finishes the work (the import is idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from opr_shared.store.mongo import UnitOfWork
from pymongo.asynchronous.database import AsyncDatabase

from identity.handlers.admissions import ImportResult, InvitePolicy, import_roster
from identity.store import ROSTER_IMPORTS

log = logging.getLogger(__name__)

# The stored record keeps the first row errors; the synchronous answer has them all.
STORED_ERRORS = 1000

# Far longer than one chunk takes: a running import whose record has not moved
# for this long lost the process that ran it.
STALLED_AFTER = timedelta(minutes=10)
STALLED = (
    "the import stopped moving (its process ended); importing the same roster again finishes it"
)


def _counts(result: ImportResult) -> dict[str, Any]:
    return {
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "rejected": result.rejected,
        "invited": result.invited,
        "error_count": len(result.errors),
    }


def _errors(result: ImportResult) -> list[dict[str, Any]]:
    ordered = sorted(result.errors, key=lambda e: e.row)[:STORED_ERRORS]
    return [{"row": e.row, "field": e.field, "message": e.message} for e in ordered]


class RosterImports:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], uow: UnitOfWork) -> None:
        self.db = db
        self.uow = uow
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = asyncio.Event()

    async def start(self, total: int, started_by: str) -> str:
        import_id = uuid.uuid4().hex
        now = datetime.now(UTC)
        await self.db[ROSTER_IMPORTS].insert_one(
            {
                "_id": import_id,
                "status": "running",
                "total": total,
                "processed": 0,
                **_counts(ImportResult()),
                "errors": [],
                "started_by": started_by,
                "started_at": now,
                "updated_at": now,
                "finished_at": None,
            }
        )
        return import_id

    async def execute(
        self,
        import_id: str,
        rows: list[Any],
        *,
        chunk_size: int,
        invite: InvitePolicy | None,
    ) -> ImportResult:
        """Import ``rows``, recording progress on the import's record.

        Side effects: those of :func:`import_roster`, plus the progress record.
        """

        async def progress(result: ImportResult, processed: int) -> None:
            await self.db[ROSTER_IMPORTS].update_one(
                {"_id": import_id},
                {
                    "$set": {
                        "processed": processed,
                        **_counts(result),
                        "updated_at": datetime.now(UTC),
                    }
                },
            )

        try:
            result = await import_roster(
                self.uow, rows, chunk_size=chunk_size, invite=invite, progress=progress
            )
        except BaseException as exc:
            await self.db[ROSTER_IMPORTS].update_one(
                {"_id": import_id},
                {
                    "$set": {
                        "status": "failed",
                        "failure": f"{type(exc).__name__}: the import stopped; "
                        "importing the same roster again finishes it",
                        "finished_at": datetime.now(UTC),
                        "updated_at": datetime.now(UTC),
                    }
                },
            )
            raise
        now = datetime.now(UTC)
        await self.db[ROSTER_IMPORTS].update_one(
            {"_id": import_id},
            {
                "$set": {
                    "status": "completed",
                    "processed": len(rows),
                    **_counts(result),
                    "errors": _errors(result),
                    "finished_at": now,
                    "updated_at": now,
                }
            },
        )
        return result

    def run_in_background(
        self, import_id: str, rows: list[Any], *, chunk_size: int, invite: InvitePolicy | None
    ) -> None:
        async def job() -> None:
            try:
                await self.execute(import_id, rows, chunk_size=chunk_size, invite=invite)
            except Exception:
                log.exception("roster import failed", extra={"import_id": import_id})

        task = asyncio.create_task(job(), name=f"roster-import-{import_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def get(self, import_id: str) -> dict[str, Any] | None:
        """The import's record; a running import that stalled is marked failed first."""
        now = datetime.now(UTC)
        await self.db[ROSTER_IMPORTS].update_one(
            {"_id": import_id, "status": "running", "updated_at": {"$lt": now - STALLED_AFTER}},
            {"$set": {"status": "failed", "failure": STALLED, "finished_at": now}},
        )
        return await self.db[ROSTER_IMPORTS].find_one({"_id": import_id})

    # A runtime worker: nothing to do but cancel the imports in hand at shutdown.
    async def run(self) -> None:
        await self._stopped.wait()

    async def stop(self) -> None:
        self._stopped.set()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            # A cancelled import is recorded as failed by execute().
            with contextlib.suppress(BaseException):
                await task
