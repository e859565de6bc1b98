"""The SMTP sink, served in-process: what it accepts is on disk, in arrival order."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from opr_shared.localinfra import free_port
from opr_shared.smtpsink import (
    REFUSE_FLAG,
    MaildirWriter,
    accept_mail,
    envelope_recipients,
    mail_files,
    read_mailbox,
    refuse_mail,
    serve,
    text_body,
    wait_for_mail,
    wait_for_mails,
)


@dataclass
class Sink:
    host: str
    port: int
    maildir: Path


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[Sink]:
    port = free_port()
    maildir = tmp_path / "mail"
    ready = asyncio.Event()
    task = asyncio.create_task(serve("127.0.0.1", port, maildir, ready=ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield Sink("127.0.0.1", port, maildir)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def _message(subject: str, to: str = "student@example.org", body: str = "Hello") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "registry@example.edu"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    return msg


def _send(sink: Sink, msg: EmailMessage, rcpts: list[str] | None = None) -> None:
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        client.send_message(msg, to_addrs=rcpts)


async def test_each_accepted_message_is_one_parsable_eml_file(sink: Sink) -> None:
    msg = _message("Invitation to Program Registration 入學註冊", body="你好, welcome")
    await asyncio.to_thread(_send, sink, msg, ["student@example.org", "hidden@example.org"])

    files = mail_files(sink.maildir)
    assert len(files) == 1
    assert files[0].suffix == ".eml"
    [stored] = read_mailbox(sink.maildir)
    assert stored["Subject"] == "Invitation to Program Registration 入學註冊"
    assert "你好, welcome" in text_body(stored)
    assert envelope_recipients(stored) == ["student@example.org", "hidden@example.org"]
    assert stored["Return-Path"] == "<registry@example.edu>"


async def test_files_sort_in_arrival_order_and_no_temporary_file_remains(sink: Sink) -> None:
    for i in range(12):
        await asyncio.to_thread(_send, sink, _message(f"message {i:02d}"))

    subjects = [m["Subject"] for m in read_mailbox(sink.maildir)]
    assert subjects == [f"message {i:02d}" for i in range(12)]
    assert [p for p in sink.maildir.iterdir() if p.name.startswith(".tmp-")] == []


async def test_concurrent_senders_lose_nothing(sink: Sink) -> None:
    await asyncio.gather(
        *(asyncio.to_thread(_send, sink, _message(f"parallel {i}")) for i in range(30))
    )
    subjects = {m["Subject"] for m in read_mailbox(sink.maildir)}
    assert subjects == {f"parallel {i}" for i in range(30)}


async def test_refusing_answers_451_and_stores_nothing_until_accepting_again(sink: Sink) -> None:
    refuse_mail(sink.maildir)
    assert (sink.maildir / REFUSE_FLAG).exists()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await asyncio.to_thread(_send, sink, _message("while refusing"))
    [(code, _)] = refused.value.recipients.values()
    assert code == 451
    assert mail_files(sink.maildir) == []

    accept_mail(sink.maildir)
    await asyncio.to_thread(_send, sink, _message("after refusing"))
    assert [m["Subject"] for m in read_mailbox(sink.maildir)] == ["after refusing"]


async def test_wait_for_mail_returns_the_matching_message_once_it_arrives(sink: Sink) -> None:
    async def send_later() -> None:
        await asyncio.sleep(0.3)
        await asyncio.to_thread(_send, sink, _message("other", to="someone@example.org"))
        await asyncio.to_thread(_send, sink, _message("wanted", to="me@example.org"))

    sender = asyncio.create_task(send_later())
    found = await wait_for_mail(sink.maildir, lambda m: m["To"] == "me@example.org", timeout=10)
    await sender
    assert found["Subject"] == "wanted"


async def test_wait_for_mails_times_out_naming_what_did_arrive(sink: Sink) -> None:
    await asyncio.to_thread(_send, sink, _message("only this one"))
    with pytest.raises(TimeoutError, match="only this one"):
        await wait_for_mails(sink.maildir, count=2, timeout=0.5)


def test_writer_names_sort_by_arrival_and_are_unique(tmp_path: Path) -> None:
    writer = MaildirWriter(tmp_path)
    paths = [writer.write(f"Subject: {i}\r\n\r\nbody\r\n".encode()) for i in range(50)]
    assert sorted(paths) == paths
    assert len({p.name for p in paths}) == 50
    assert [p.read_bytes().split(b"\r\n")[0] for p in paths[:2]] == [b"Subject: 0", b"Subject: 1"]


def test_reading_a_missing_maildir_gives_an_empty_mailbox(tmp_path: Path) -> None:
    assert read_mailbox(tmp_path / "nowhere") == []
