"""The SMTP connections the notifier keeps open between messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from notifier import smtp
from notifier.settings import Settings

SENDER = "registry@university.example"


class Sink:
    """An in-process SMTP server that counts its connections and messages."""

    def __init__(self) -> None:
        self.sessions: list[SMTP] = []
        self.subjects: list[str] = []
        self.refuse_mail_once = False
        self.send: smtp.Send

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.refuse_mail_once:
            self.refuse_mail_once = False
            return "421 closing this connection"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        subject = next(
            line for line in envelope.content.decode().splitlines() if line.startswith("Subject:")
        )
        self.subjects.append(subject.removeprefix("Subject: "))
        return "250 OK"

    def protocol(self) -> SMTP:
        session = SMTP(self, hostname="sink.example")
        self.sessions.append(session)
        return session

    def drop_connections(self) -> None:
        """Close every connection from the server's side."""
        for session in self.sessions:
            if session.transport is not None:
                session.transport.close()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    """The sink, listening; its ``send`` is a notifier's sender pointed at it."""
    sink = Sink()
    server = await asyncio.get_running_loop().create_server(sink.protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_local_hostname="n.example")
    sink.send = smtp.smtp_sender(settings)
    yield sink
    server.close()


def message(subject: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = SENDER
    mail["To"] = "student@example.com"
    mail["Subject"] = subject
    mail.set_content("hello")
    return mail.as_bytes()


async def committed() -> bool:
    return True


async def deliver(sink: Sink, subject: str) -> None:
    await sink.send(message(subject), SENDER, ["student@example.com"], committed)


async def test_messages_one_after_another_share_one_connection(sink: Sink) -> None:
    for n in range(3):
        await deliver(sink, f"m{n}")
    assert sink.subjects == ["m0", "m1", "m2"]
    assert len(sink.sessions) == 1


async def test_connections_opened_for_messages_at_once_serve_the_next_ones(sink: Sink) -> None:
    await asyncio.gather(*(deliver(sink, f"a{n}") for n in range(4)))
    opened = len(sink.sessions)
    await asyncio.gather(*(deliver(sink, f"b{n}") for n in range(4)))
    assert sorted(sink.subjects) == [f"a{n}" for n in range(4)] + [f"b{n}" for n in range(4)]
    assert opened == 4
    assert len(sink.sessions) == 4


async def test_a_kept_connection_the_server_closed_is_replaced_and_the_message_sent_once(
    sink: Sink,
) -> None:
    await deliver(sink, "before")
    sink.drop_connections()
    await asyncio.sleep(0.1)
    await deliver(sink, "after")
    assert sink.subjects == ["before", "after"]
    assert len(sink.sessions) == 2


async def test_a_server_closing_the_kept_connection_at_mail_gets_the_message_on_a_new_one(
    sink: Sink,
) -> None:
    await deliver(sink, "first")
    sink.refuse_mail_once = True
    await deliver(sink, "second")
    assert sink.subjects == ["first", "second"]
    assert len(sink.sessions) == 2


async def test_a_message_stopped_before_the_point_of_no_return_leaves_its_connection(
    sink: Sink,
) -> None:
    async def lost() -> bool:
        return False

    await deliver(sink, "first")
    with pytest.raises(smtp.NotCommitted):
        await sink.send(message("never"), SENDER, ["student@example.com"], lost)
    await deliver(sink, "third")
    assert sink.subjects == ["first", "third"]
    # The unterminated message's connection was closed, not kept for the next one.
    assert len(sink.sessions) == 2
