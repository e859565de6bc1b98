"""The bench notices each student's completion (card with a slot and every e-mail)
when the last piece arrives, whichever comes last: the mail or the events."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from opr_shared.smtpsink import MaildirWriter

ROOT = Path(__file__).resolve().parents[2]


def driver() -> Any:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("bench.driver")


def mail(to: str, subject: str) -> bytes:
    message = EmailMessage()
    message["To"] = to
    message["X-Envelope-To"] = to
    message["X-Received-At"] = "2026-12-06T08:00:00+00:00"
    message["Subject"] = subject
    message.set_content("Hello")
    return message.as_bytes()


def event(kind: str) -> bytes:
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": kind,
            "occurred_at": "2026-12-06T08:00:00+00:00",
            "payload": {},
        }
    ).encode()


def intake(bench: Any, maildir: Path, numbers: list[str]) -> Any:
    """An intake with only what completion tracking reads (no stack behind it)."""
    it = bench.Intake.__new__(bench.Intake)
    it.students = [bench.Student(student_no=n, row={}, password="") for n in numbers]
    it.by_no = {s.student_no: s for s in it.students}
    it.mail = bench.MailWatcher(maildir, {f"{n}@example.com": n for n in numbers})
    it.topics = bench.TopicWatcher("127.0.0.1:1", set(numbers))
    return it


def card_events(it: Any, number: str) -> None:
    for kind in ("CardIssued", "CardReadyForCollection"):
        it.topics._take("card.events", int(time.time() * 1000), number.encode(), event(kind))
    it.topics.changed.set()


async def mails(it: Any, writer: Any, number: str, count: int) -> None:
    for k in range(count):
        writer.write(mail(f"{number}@example.com", f"Message {k}"))
    await it.mail.scan_once()


async def settle() -> None:
    """Let the tracker wake and look."""
    await asyncio.sleep(0.05)


async def test_a_student_is_complete_when_the_last_mail_or_event_arrives(tmp_path: Path) -> None:
    bench = driver()
    writer = MaildirWriter(tmp_path)
    it = intake(bench, tmp_path, ["30000001", "30000002", "30000003"])
    tracking = asyncio.create_task(it._until_complete(time.monotonic() + 30))
    await settle()

    # The first: the card first, the mail last.
    card_events(it, "30000001")
    await mails(it, writer, "30000001", bench.EXPECTED_MAILS - 1)
    await settle()
    assert it.by_no["30000001"].completed == 0.0
    await mails(it, writer, "30000001", 1)
    await settle()
    assert it.by_no["30000001"].completed > 0.0

    # The second: every mail first, the card events last.
    await mails(it, writer, "30000002", bench.EXPECTED_MAILS)
    await settle()
    assert it.by_no["30000002"].completed == 0.0
    card_events(it, "30000002")
    await settle()
    assert it.by_no["30000002"].completed > 0.0
    assert not tracking.done()

    # The third: a failed journey is not waited for.
    it.by_no["30000003"].error = "JourneyFailed: refused"
    card_events(it, "30000001")  # any change wakes the tracker
    await asyncio.wait_for(tracking, 5)
    assert it.by_no["30000003"].completed == 0.0


async def test_a_student_never_complete_is_reported_with_what_was_seen(tmp_path: Path) -> None:
    bench = driver()
    writer = MaildirWriter(tmp_path)
    it = intake(bench, tmp_path, ["30000004"])
    card_events(it, "30000004")
    await mails(it, writer, "30000004", 2)
    await it._until_complete(time.monotonic() + 0.1)
    student = it.by_no["30000004"]
    assert student.completed == 0.0
    assert student.error == (
        "not complete in time: events ['CardIssued', 'CardReadyForCollection'], 2 e-mails"
    )
