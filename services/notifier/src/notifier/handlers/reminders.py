"""Deadline reminders: a periodic worker that e-mails students who still owe
compulsory items as the registration deadline approaches.

Idempotency key: (student, reminder day) — the notification's cause id is derived
from both, so a second pass on the same day, a restart or a second replica
queues nothing twice; the progress row remembers the last reminder day so each
pass only looks at students not yet reminded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from opr_shared.store.mongo import Transaction, UnitOfWork

from notifier.domain import messages as m
from notifier.domain.messages import House
from notifier.domain.notification import reminder_cause
from notifier.domain.progress import owed, reminder_date
from notifier.domain.wording import outstanding_lines, when
from notifier.handlers.queueing import queue
from notifier.store import INTAKES, PROGRESS

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ReminderWorker:
    def __init__(
        self,
        uow: UnitOfWork,
        house: House,
        *,
        poll_seconds: float,
        days_before: tuple[int, ...],
        clock: Callable[[], datetime] = _utc_now,
        batch: int = 200,
    ) -> None:
        self.uow = uow
        self.house = house
        self.poll_seconds = poll_seconds
        self.days_before = days_before
        self.clock = clock
        self.batch = batch
        self._stopping = asyncio.Event()

    async def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.remind_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reminder pass failed; trying again later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.poll_seconds)

    async def remind_due(self) -> int:
        """One pass over every intake whose reminder day has come; returns how many were queued."""
        now = self.clock()
        queued = 0
        async for intake in self.uow.db[INTAKES].find({"registration_deadline": {"$gt": now}}):
            on = reminder_date(intake["registration_deadline"], now, self.days_before)
            if on is not None:
                queued += await self._remind_intake(intake, on)
        return queued

    async def _remind_intake(self, intake: dict[str, Any], on: date) -> int:
        day_key = on.isoformat()
        queued = 0
        while not self._stopping.is_set():
            candidates = (
                await self.uow.db[PROGRESS]
                .find(
                    {
                        "intake_year": intake["_id"],
                        "needs_reminder": True,
                        "last_reminder_on": {"$ne": day_key},
                    },
                    {"_id": 1},
                )
                .limit(self.batch)
                .to_list()
            )
            if not candidates:
                break
            for row in candidates:
                if await self.uow.run(self._reminder(row["_id"], intake, day_key)):
                    queued += 1
        if queued:
            log.info("deadline reminders queued", extra={"count": queued, "day": day_key})
        return queued

    def _reminder(self, student_no: str, intake: dict[str, Any], day_key: str) -> Any:
        async def work(tx: Transaction) -> bool:
            progress = await tx.db[PROGRESS].find_one({"_id": student_no}, session=tx.session)
            if not progress or progress.get("last_reminder_on") == day_key:
                return False
            await tx.db[PROGRESS].update_one(
                {"_id": student_no}, {"$set": {"last_reminder_on": day_key}}, session=tx.session
            )
            items = owed(progress)
            if not progress.get("needs_reminder") or not items:
                return False
            return await queue(
                tx,
                kind=m.DEADLINE_REMINDER,
                student_no=student_no,
                cause_id=reminder_cause(student_no, day_key),
                facts={
                    "registration_deadline": when(intake["registration_deadline"]),
                    "missing": outstanding_lines(
                        [{"item": i["item"], "label": i["label"]} for i in items]
                    ),
                },
                given={},
                house=self.house,
            )

        return work
