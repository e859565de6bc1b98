"""Delivering queued notifications over SMTP, with retries and back-off.

A notification is claimed (``sending`` with a lease), sent, then marked ``sent``
together with NotificationSent in one transaction. A failure schedules a retry;
after the last attempt it is ``failed`` with NotificationFailed. A claim whose
lease ran out (the process died mid-send) is picked up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from opr_shared.events.catalogue import NotificationFailed, NotificationSent
from opr_shared.store.mongo import Transaction, UnitOfWork
from pymongo import ASCENDING, ReturnDocument

from notifier.domain.notification import retry_delay
from notifier.store import NOTIFICATIONS

log = logging.getLogger(__name__)

Send = Callable[[EmailMessage], Awaitable[None]]
CLAIM_LEASE = timedelta(minutes=2)


def to_email(doc: dict[str, Any], mail_from: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = ", ".join(doc["recipients"])
    message["Subject"] = doc["subject"]
    # A stable Message-ID lets mail systems drop a copy sent twice after a crash.
    message["Message-ID"] = f"<{doc['_id']}@notifier.registration>"
    message["X-Notification-Id"] = doc["_id"]
    message.set_content(doc["text"])
    message.add_alternative(doc["html"], subtype="html")
    return message


class DeliveryWorker:
    def __init__(
        self,
        uow: UnitOfWork,
        send: Send,
        *,
        mail_from: str,
        poll_seconds: float,
        max_attempts: int,
        max_backoff_seconds: float,
    ) -> None:
        self.uow = uow
        self.send = send
        self.mail_from = mail_from
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        self.max_backoff_seconds = max_backoff_seconds
        self._stopping = asyncio.Event()

    async def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                delivered = await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery loop failed; retrying")
                delivered = 0
            if delivered == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.poll_seconds)

    async def deliver_due(self, limit: int = 50) -> int:
        """Send what is due now; return how many were attempted."""
        done = 0
        while done < limit and not self._stopping.is_set():
            doc = await self._claim()
            if doc is None:
                break
            await self._deliver(doc)
            done += 1
        return done

    async def _claim(self) -> dict[str, Any] | None:
        now = datetime.now(UTC)
        notifications = self.uow.db[NOTIFICATIONS]
        claimed: dict[str, Any] | None = await notifications.find_one_and_update(
            {
                "$or": [
                    {"status": "pending", "next_attempt_at": {"$lte": now}},
                    {"status": "sending", "lease_until": {"$lt": now}},
                ]
            },
            {"$set": {"status": "sending", "lease_until": now + CLAIM_LEASE}},
            sort=[("next_attempt_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )
        return claimed

    async def _deliver(self, doc: dict[str, Any]) -> None:
        try:
            await self.send(to_email(doc, self.mail_from))
        except Exception as exc:
            await self._failed(doc, f"{type(exc).__name__}: {exc}")
            return

        async def mark_sent(tx: Transaction) -> None:
            now = datetime.now(UTC)
            await tx.db[NOTIFICATIONS].update_one(
                {"_id": doc["_id"]},
                {
                    "$set": {"status": "sent", "sent_at": now, "attempts": doc["attempts"] + 1},
                    "$unset": {"lease_until": "", "last_error": ""},
                },
                session=tx.session,
            )
            tx.publish(
                NotificationSent(
                    notification_id=doc["_id"],
                    student_no=doc["student_no"],
                    template=doc["template"],
                    channel="email",
                    recipient_count=len(doc["recipients"]),
                    cause_event_id=doc["cause_event_id"],
                    sent_at=now,
                ),
                subject=doc["student_no"],
            )

        await self.uow.run(mark_sent, causation_id=doc["cause_event_id"])

    async def _failed(self, doc: dict[str, Any], error: str) -> None:
        attempts = doc["attempts"] + 1
        log.warning(
            "delivery failed",
            extra={"notification_id": doc["_id"], "attempt": attempts, "error": error[:200]},
        )

        async def record(tx: Transaction) -> None:
            now = datetime.now(UTC)
            if attempts < self.max_attempts:
                update: dict[str, Any] = {
                    "status": "pending",
                    "attempts": attempts,
                    "last_error": error[:500],
                    "next_attempt_at": now + retry_delay(attempts, self.max_backoff_seconds),
                }
            else:
                update = {
                    "status": "failed",
                    "attempts": attempts,
                    "last_error": error[:500],
                    "failed_at": now,
                }
                tx.publish(
                    NotificationFailed(
                        notification_id=doc["_id"],
                        student_no=doc["student_no"],
                        template=doc["template"],
                        error=error[:500],
                        attempts=attempts,
                        cause_event_id=doc["cause_event_id"],
                        failed_at=now,
                    ),
                    subject=doc["student_no"],
                )
            await tx.db[NOTIFICATIONS].update_one(
                {"_id": doc["_id"]},
                {"$set": update, "$unset": {"lease_until": ""}},
                session=tx.session,
            )

        await self.uow.run(record, causation_id=doc["cause_event_id"])
