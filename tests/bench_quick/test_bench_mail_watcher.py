"""The bench reads each message of the mail sink once, as it is delivered: the ones
already there at the start, other people's and half-written ones are not counted."""

from __future__ import annotations

import importlib
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from opr_shared.smtpsink import MaildirWriter

ROOT = Path(__file__).resolve().parents[2]


def driver() -> Any:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("bench.driver")


def message(to: str, subject: str, body: str = "Hello") -> bytes:
    mail = EmailMessage()
    mail["To"] = to
    mail["X-Envelope-To"] = to
    mail["X-Received-At"] = "2026-12-06T02:00:00+00:00"
    mail["Subject"] = subject
    mail.set_content(body)
    return mail.as_bytes()


def test_each_delivered_message_is_read_once_in_order(tmp_path: Path) -> None:
    writer = MaildirWriter(tmp_path)
    writer.write(message("a@example.com", "from before the run"))
    watcher = driver().MailWatcher(tmp_path, {"a@example.com": "20270001"})
    assert watcher.scan() == []

    writer.write(message("a@example.com", "Activate", "https://x/activate?token=abc-1"))
    writer.write(message("someone@example.com", "Not ours"))
    writer.write(message("a@example.com", "Form received"))
    (tmp_path / ".tmp-00000000000000000000-half-written.eml").write_bytes(b"Subject: x\n")

    assert watcher.scan() == [("20270001", "abc-1")]
    assert [m.subject for m in watcher.mails["20270001"]] == ["Activate", "Form received"]
    assert watcher.scan() == []
    assert len(watcher.mails["20270001"]) == 2

    writer.write(message("a@example.com", "Card issued"))
    assert watcher.scan() == []
    assert [m.subject for m in watcher.mails["20270001"]][-1] == "Card issued"
