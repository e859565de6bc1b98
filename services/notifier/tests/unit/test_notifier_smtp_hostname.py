"""The name the notifier gives in EHLO: looked up once, not for every message."""

from __future__ import annotations

import asyncio
import socket
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from notifier import smtp
from notifier.settings import Settings


class Recorder:
    def __init__(self) -> None:
        self.greetings: list[str] = []
        self.delivered = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.greetings.append(str(session.host_name))
        self.delivered += 1
        return "250 OK"


async def _server(recorder: Recorder) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(recorder, hostname="sink.example"), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    return server, port


def _message(n: int) -> bytes:
    message = EmailMessage()
    message["From"] = "registry@university.example"
    message["To"] = "student@example.com"
    message["Subject"] = f"message {n}"
    message.set_content("hello")
    return message.as_bytes()


async def _send_three(settings: Settings) -> None:
    async def commit() -> bool:
        return True

    send = smtp.smtp_sender(settings)
    # Two at once first, as a batch of deliveries starts, then one more.
    await asyncio.gather(
        *(
            send(_message(n), "registry@university.example", ["student@example.com"], commit)
            for n in range(2)
        )
    )
    await send(_message(2), "registry@university.example", ["student@example.com"], commit)


async def test_the_machine_name_is_looked_up_once_for_every_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lookups: list[int] = []

    def getfqdn(name: str = "") -> str:
        lookups.append(1)
        return "notifier-7.cluster.example"

    monkeypatch.setattr(socket, "getfqdn", getfqdn)
    recorder = Recorder()
    server, port = await _server(recorder)
    try:
        await _send_three(Settings(smtp_host="127.0.0.1", smtp_port=port))
    finally:
        server.close()
        await server.wait_closed()
    assert recorder.delivered == 3
    assert recorder.greetings == ["notifier-7.cluster.example"] * 3
    assert len(lookups) == 1


async def test_a_configured_name_is_used_without_a_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    def getfqdn(*_: Any) -> str:
        raise AssertionError("no lookup expected")

    monkeypatch.setattr(socket, "getfqdn", getfqdn)
    recorder = Recorder()
    server, port = await _server(recorder)
    try:
        await _send_three(
            Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_local_hostname="mail.example.edu")
        )
    finally:
        server.close()
        await server.wait_closed()
    assert recorder.greetings == ["mail.example.edu"] * 3
