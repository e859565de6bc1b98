"""Delivering queued notifications over SMTP, with retries and back-off.

A notification is claimed (``sending``, a lease and a claim id), sent up to the
SMTP point of no return, marked ``committing`` (only while the claim is still
ours), then the final ``.`` goes out; on ``250`` it is marked ``sent`` together
with NotificationSent in one transaction. A failure schedules a retry; after
the last attempt it is ``failed`` with NotificationFailed.

After a crash:
- a claim that never reached ``committing`` is claimed again when its lease
  runs out and sent again: the server discarded the unterminated message;
- a claim that reached ``committing`` is *not* sent again: it is settled as
  sent, flagged ``confirmed: false`` in the delivery log (the process died
  between the point of no return and recording the server's answer).

So a message is never sent twice. The residual risk is the other way round: a
process dying after the database recorded the ``committing`` write but before
the ``.`` left its socket (the database's reply time: milliseconds, more on a
busy server; the reliability suite's crashes do hit it), or a server refusing
the ``.`` while nobody listens, leaves a message marked sent (unconfirmed) that
was not delivered.
Staff see ``confirmed: false`` in the log and may resend it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import math
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import formataddr, parseaddr
from typing import Any

from opr_shared.events.catalogue import NotificationFailed, NotificationSent
from opr_shared.store.mongo import Transaction, UnitOfWork, claim_many
from pymongo import ASCENDING

from notifier.domain.notification import retry_delay
from notifier.smtp import DeliveryUncertain, NotCommitted, Send
from notifier.store import NOTIFICATIONS

log = logging.getLogger(__name__)

_ADDRESS = re.compile(r"[^\s<>@,;:\"']+@[^\s<>@,;:\"']+")
LOG_KEEP = 30
# Deliveries recorded as sent in one transaction at most.
MARK_BATCH = 32

__all__ = ["DeliveryWorker", "Send", "redact", "to_email"]


def redact(error: str) -> str:
    """An error message without e-mail addresses, short enough for the log."""
    return _ADDRESS.sub("<address>", error)[:500]


def to_email(doc: dict[str, Any], mail_from: str) -> bytes:
    """The message as it goes over SMTP: the text and HTML versions as
    alternatives, quoted-printable, so any relay takes it (7-bit only).

    Written out here rather than built with the ``email`` package: its header
    objects and generator took 1.9 ms of CPU for each message, nine parts in
    ten of it parsing and folding the few headers set below; this takes a
    twentieth of that, and a reader parses the same message from either.
    """
    mail_id = doc["_id"]
    # "=_" never occurs in quoted-printable text ("=" is always "=3D" there).
    boundary = f"=_{mail_id}"
    head = (
        _header("From", _address(mail_from))
        + _header("To", ", ".join(doc["recipients"]))
        + _header("Subject", doc["subject"])
        # A stable Message-ID lets mail systems recognise a copy should one ever be sent twice.
        + f"Message-ID: <{mail_id}@notifier.registration>\r\n"
        + f"X-Notification-Id: {mail_id}\r\n"
        + "Auto-Submitted: auto-generated\r\n"
        + "MIME-Version: 1.0\r\n"
        + f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'
        + "\r\n"
    )
    parts = [head.encode("ascii")]
    for subtype, content in (("plain", doc["text"]), ("html", doc["html"])):
        parts.append(
            f"--{boundary}\r\n"
            f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode("ascii")
        )
        parts.append(binascii.b2a_qp(content.encode("utf-8")).replace(b"\n", b"\r\n"))
        parts.append(b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(parts)


# Bytes of UTF-8 per encoded word: 52 characters of base64, so that a line with
# one (the first behind "Subject: ") stays within RFC 2047's 76.
_WORD_BYTES = 39


def _header(name: str, value: str) -> str:
    """One header line; a value that is not ASCII as RFC 2047 encoded words, each
    on a line of its own, split between characters."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"a line break in the {name} header")
    if value.isascii():
        return f"{name}: {value}\r\n"
    words: list[bytes] = []
    word = b""
    for char in value:
        encoded = char.encode("utf-8")
        if len(word) + len(encoded) > _WORD_BYTES:
            words.append(word)
            word = b""
        word += encoded
    words.append(word)
    folded = "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words)
    return f"{name}: {folded}\r\n"


def _address(mailbox: str) -> str:
    """``mailbox`` (``Name <address>`` or an address) with its name encoded or
    quoted as a header needs it."""
    name, address = parseaddr(mailbox)
    return formataddr((name, address), charset="utf-8") if address else mailbox


def _entry(event: str, at: datetime, **detail: Any) -> dict[str, Any]:
    return {"$each": [{"at": at, "event": event, **detail}], "$slice": -LOG_KEEP}


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
        lease_seconds: float = 120.0,
        concurrency: int = 4,
    ) -> None:
        self.uow = uow
        self.send = send
        self.mail_from = mail_from
        self.envelope_from = parseaddr(mail_from)[1] or mail_from
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        self.max_backoff_seconds = max_backoff_seconds
        self.lease = timedelta(seconds=lease_seconds)
        self.concurrency = max(1, concurrency)
        self._stopping = asyncio.Event()
        self._dead_claims_sought_at = -math.inf
        # Deliveries waiting to be recorded as sent, and the task recording them.
        self._to_mark: list[_Mark] = []
        self._marking: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                done = await self.settle_abandoned() + await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery loop failed; retrying")
                done = 0
            if done == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.poll_seconds)

    async def deliver_due(self, limit: int = 50) -> int:
        """Send what is due now, ``concurrency`` messages at a time; return how many
        were attempted.

        Messages are claimed a round ahead: as many as there are free places and
        ``concurrency`` more, which start as places free up; the next claim is made
        once those have all started. A claim is three requests however many it
        takes, and claiming only for the place just freed (one message a claim,
        once mail queues up) made it three requests for every message sent.
        Claiming one at a time before that made the database's answer time the
        pace of every delivery. A message claimed is always sent, also when the
        worker is stopping: claimed ahead, it waits for a place a delivery's time
        at most, far within its lease."""
        done = 0
        sending: set[asyncio.Task[None]] = set()
        claimed: deque[dict[str, Any]] = deque()
        exhausted = False
        try:
            while True:
                if not claimed and not exhausted and done < limit and not self._stopping.is_set():
                    wanted = min(2 * self.concurrency - len(sending), limit - done)
                    docs = await self._claim(wanted)
                    claimed.extend(docs)
                    done += len(docs)
                    exhausted = len(docs) < wanted
                while claimed and len(sending) < self.concurrency:
                    sending.add(asyncio.create_task(self._deliver(claimed.popleft())))
                if not sending:
                    break
                finished, sending = await asyncio.wait(sending, return_when=asyncio.FIRST_COMPLETED)
                _report(finished)
        finally:
            # Each delivery settles its own outcome; wait for those under way.
            if sending:
                await asyncio.wait(sending)
                _report(sending)
        return done

    async def settle_abandoned(self) -> int:
        """Settle claims that died after their point of no return: sent, unconfirmed."""
        now = datetime.now(UTC)
        abandoned = (
            await self.uow.db[NOTIFICATIONS]
            .find({"status": "sending", "lease_until": {"$lt": now}, "committing": True})
            .to_list()
        )
        for doc in abandoned:
            log.warning(
                "delivery settled without the server's answer",
                extra={"notification_id": doc["_id"]},
            )
            await self._mark_sent(doc, confirmed=False, note="process stopped after commit point")
        return len(abandoned)

    async def _claim(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` due messages, and claims whose owner died before their
        point of no return. Two queries rather than one ``$or``: each rides its own
        index, where an ``$or`` may scan every notification ever written (and so
        would a findAndModify on the local stack's database: see ``update_by_id``).
        The messages claimed together share a claim id.

        Dead claims are looked for at most once per poll interval: they turn up
        only when a lease runs out (minutes after a crash), while a claim of due
        messages that comes back short (every claim, when mail trickles in) looked
        for them each time."""
        now = datetime.now(UTC)
        claim_id = uuid.uuid4().hex
        claim = {
            "$set": {
                "status": "sending",
                "lease_until": now + self.lease,
                "claim_id": claim_id,
                "committing": False,
            }
        }
        notifications = self.uow.db[NOTIFICATIONS]
        claimed = await claim_many(
            notifications,
            {"status": "pending", "next_attempt_at": {"$lte": now}},
            claim,
            claimed={"claim_id": claim_id},
            sort=[("next_attempt_at", ASCENDING)],
            limit=limit,
        )
        if len(claimed) < limit and self._time_to_seek_dead_claims():
            claimed += await claim_many(
                notifications,
                {"status": "sending", "lease_until": {"$lt": now}},
                claim,
                claimed={"claim_id": claim_id},
                sort=[("lease_until", ASCENDING)],
                limit=limit - len(claimed),
                # Past the point of no return: settled by settle_abandoned, not sent again.
                recheck={"committing": False},
            )
        return claimed

    def _time_to_seek_dead_claims(self) -> bool:
        now = time.monotonic()
        if now - self._dead_claims_sought_at < self.poll_seconds:
            return False
        self._dead_claims_sought_at = now
        return True

    async def _deliver(self, doc: dict[str, Any]) -> None:
        notifications = self.uow.db[NOTIFICATIONS]

        async def commit() -> bool:
            result = await notifications.update_one(
                {"_id": doc["_id"], "claim_id": doc["claim_id"], "status": "sending"},
                {"$set": {"committing": True, "committed_at": datetime.now(UTC)}},
            )
            return result.modified_count == 1

        try:
            await self.send(
                to_email(doc, self.mail_from), self.envelope_from, doc["recipients"], commit
            )
        except NotCommitted:
            log.warning("claim lost before sending; left to its new owner")
            return
        except DeliveryUncertain as exc:
            await self._mark_sent(doc, confirmed=False, note=redact(str(exc)))
            return
        except Exception as exc:
            await self._failed(doc, redact(f"{type(exc).__name__}: {exc}"))
            return
        await self._mark_sent(doc, confirmed=True)

    async def _mark_sent(self, doc: dict[str, Any], *, confirmed: bool, note: str = "") -> None:
        """Record ``doc`` as sent with NotificationSent; returns once committed.

        Deliveries that finish while a record is being written are recorded
        together in the next transaction (one commit and one outbox write for
        all of them, rather than a transaction each); a delivery finishing on its
        own is recorded at once. Should that shared transaction fail, each is
        recorded in a transaction of its own, so one cannot hold back the others."""
        mark = _Mark(doc, confirmed, note, asyncio.get_running_loop().create_future())
        self._to_mark.append(mark)
        if self._marking is None or self._marking.done():
            self._marking = asyncio.create_task(self._record_marks())
        await asyncio.shield(mark.done)

    async def _record_marks(self) -> None:
        batch: list[_Mark] = []
        try:
            while self._to_mark:
                batch, self._to_mark = self._to_mark[:MARK_BATCH], self._to_mark[MARK_BATCH:]
                await self._record(batch)
        except BaseException as exc:  # cancelled: nobody may be left waiting
            for m in [*batch, *self._to_mark]:
                m.settle(exc)
            self._to_mark = []
            raise

    async def _record(self, batch: list[_Mark]) -> None:
        try:
            if len(batch) == 1:
                await self._mark_one(batch[0])
            else:
                await self.uow.run_together(
                    [(self._marking_work(m), m.doc["cause_event_id"]) for m in batch]
                )
        except Exception as exc:
            if len(batch) == 1:
                batch[0].settle(exc)
                return
            log.warning("recording deliveries together failed; one at a time", exc_info=exc)
            for m in batch:
                try:
                    await self._mark_one(m)
                except Exception as one_exc:
                    m.settle(one_exc)
                else:
                    m.settle()
            return
        for m in batch:
            m.settle()

    async def _mark_one(self, mark: _Mark) -> None:
        await self.uow.run(self._marking_work(mark), causation_id=mark.doc["cause_event_id"])

    def _marking_work(self, mark: _Mark) -> Callable[[Transaction], Awaitable[None]]:
        doc, confirmed, note = mark.doc, mark.confirmed, mark.note

        async def mark_sent(tx: Transaction) -> None:
            now = datetime.now(UTC)
            result = await tx.db[NOTIFICATIONS].update_one(
                {"_id": doc["_id"], "claim_id": doc["claim_id"], "status": "sending"},
                {
                    "$set": {
                        "status": "sent",
                        "sent_at": now,
                        "attempts": doc["attempts"] + 1,
                        "confirmed": confirmed,
                    },
                    "$unset": {"lease_until": "", "claim_id": "", "committing": ""},
                    "$push": {
                        "log": _entry(
                            "sent" if confirmed else "sent_unconfirmed", now, **_note(note)
                        )
                    },
                },
                session=tx.session,
            )
            if result.modified_count != 1:
                return  # settled by someone else already
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

        return mark_sent

    async def _failed(self, doc: dict[str, Any], error: str) -> None:
        attempts = doc["attempts"] + 1
        log.warning(
            "delivery failed",
            extra={"notification_id": doc["_id"], "attempt": attempts, "error": error[:200]},
        )

        async def record(tx: Transaction) -> None:
            now = datetime.now(UTC)
            update: dict[str, Any] = {"attempts": attempts, "last_error": error}
            if attempts < self.max_attempts:
                update["status"] = "pending"
                update["next_attempt_at"] = now + retry_delay(attempts, self.max_backoff_seconds)
            else:
                update["status"] = "failed"
                update["failed_at"] = now
            result = await tx.db[NOTIFICATIONS].update_one(
                {"_id": doc["_id"], "claim_id": doc["claim_id"], "status": "sending"},
                {
                    "$set": update,
                    "$unset": {"lease_until": "", "claim_id": "", "committing": ""},
                    "$push": {"log": _entry("attempt_failed", now, error=error)},
                },
                session=tx.session,
            )
            if result.modified_count == 1 and update["status"] == "failed":
                tx.publish(
                    NotificationFailed(
                        notification_id=doc["_id"],
                        student_no=doc["student_no"],
                        template=doc["template"],
                        error=error or "unknown error",
                        attempts=attempts,
                        cause_event_id=doc["cause_event_id"],
                        failed_at=now,
                    ),
                    subject=doc["student_no"],
                )

        await self.uow.run(record, causation_id=doc["cause_event_id"])


@dataclass
class _Mark:
    """A delivery waiting to be recorded as sent."""

    doc: dict[str, Any]
    confirmed: bool
    note: str
    done: asyncio.Future[None]

    def settle(self, error: BaseException | None = None) -> None:
        if self.done.done():
            return
        if error is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(error)


def _report(finished: set[asyncio.Task[None]]) -> None:
    """Log deliveries that failed outside their own handling (the database, say):
    their claim is taken again when its lease runs out."""
    for task in finished:
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("delivery failed; retried after its lease", exc_info=error)


def _note(note: str) -> dict[str, str]:
    return {"note": note} if note else {}
