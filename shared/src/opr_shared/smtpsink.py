"""An SMTP server that keeps every accepted message as an ``.eml`` file.

The stand-in for a mail relay in the local stack and in tests::

    python -m opr_shared.smtpsink --host 127.0.0.1 --port 2525 --maildir .data/mail

Each message is written to ``<maildir>/<arrival-time-ns>-<counter>-<random>.eml``
(names sort by arrival) through a temporary file, fsync and rename, *before* the
server answers ``250``: a message the sender saw accepted is on disk. Headers
``Return-Path``, ``X-Envelope-To`` and ``X-Received-At`` are prepended to the
message as received, so the SMTP envelope (Bcc recipients included) is visible.

Taking mail "away for a while": stop the process (connections are refused), or
create the flag file with :func:`refuse_mail` (recipients get ``451``, the
sender is expected to retry) and remove it with :func:`accept_mail`.

The readers (:func:`read_mailbox`, :func:`wait_for_mail`) are for tests.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import email
import email.policy
import itertools
import logging
import os
import secrets
import signal
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from opr_shared import collector, eventloop

log = logging.getLogger("opr_shared.smtpsink")

SUFFIX = ".eml"
REFUSE_FLAG = ".refuse-mail"
DATA_SIZE_LIMIT = 32 * 1024 * 1024

MailPredicate = Callable[[EmailMessage], bool]


class MaildirWriter:
    """Writes raw messages atomically, one file each, names sortable by arrival."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        self._counter = itertools.count()
        self._token = secrets.token_hex(3)

    def next_name(self) -> str:
        return f"{time.time_ns():020d}-{next(self._counter):08d}-{self._token}{SUFFIX}"

    def write(self, content: bytes) -> Path:
        self.maildir.mkdir(parents=True, exist_ok=True)
        final = self.maildir / self.next_name()
        tmp = self.maildir / f".tmp-{final.name}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.maildir)
        return final


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _header_safe(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")


def with_envelope_headers(envelope: Envelope, received_at: datetime) -> bytes:
    """The message as received, preceded by headers describing its SMTP envelope."""
    body = envelope.original_content
    if body is None:
        raw = envelope.content or b""
        body = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
    lines = [
        f"Return-Path: <{_header_safe(envelope.mail_from or '')}>",
        f"X-Envelope-To: {_header_safe(', '.join(envelope.rcpt_tos))}",
        f"X-Received-At: {received_at.isoformat()}",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8") + body


class MaildirHandler:
    """aiosmtpd handler: RCPT is refused while the flag file exists; DATA is written first."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        self.writer = MaildirWriter(maildir)
        # Its own threads: a busy default executor must not hold up the 250 answer.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="smtpsink-write"
        )

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def refusing(self) -> bool:
        return (self.maildir / REFUSE_FLAG).exists()

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.refusing():
            return "451 4.3.2 Mail is not accepted for now; try again later"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = with_envelope_headers(envelope, datetime.now(UTC))
        try:
            loop = asyncio.get_running_loop()
            path = await loop.run_in_executor(self._executor, self.writer.write, content)
        except OSError:
            log.exception("could not store a message from %s", envelope.mail_from)
            return "451 4.3.0 Message not stored; try again later"
        log.info("stored %s from %s to %s", path.name, envelope.mail_from, envelope.rcpt_tos)
        return "250 2.0.0 Message accepted for delivery"


async def serve(host: str, port: int, maildir: Path, *, ready: asyncio.Event | None = None) -> None:
    """Run the sink until cancelled or until SIGTERM/SIGINT."""
    await asyncio.to_thread(maildir.mkdir, parents=True, exist_ok=True)
    handler = MaildirHandler(maildir)
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return SMTP(
            handler,
            hostname="opr-smtpsink",
            enable_SMTPUTF8=True,
            data_size_limit=DATA_SIZE_LIMIT,
            loop=loop,
        )

    server = await loop.create_server(factory, host=host, port=port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    log.info("SMTP sink on %s:%d writing to %s", host, port, maildir)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
        handler.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


def refuse_mail(maildir: Path) -> None:
    """From now on, the running sink answers ``451`` to every recipient."""
    maildir.mkdir(parents=True, exist_ok=True)
    (maildir / REFUSE_FLAG).touch()


def accept_mail(maildir: Path) -> None:
    (maildir / REFUSE_FLAG).unlink(missing_ok=True)


# --- reading, for tests ---


def mail_files(maildir: Path) -> list[Path]:
    """The stored messages, oldest first."""
    if not maildir.is_dir():
        return []
    return sorted(p for p in maildir.iterdir() if p.suffix == SUFFIX and not p.name.startswith("."))


def read_message(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def read_mailbox(maildir: Path) -> list[EmailMessage]:
    """Every stored message, oldest first, parsed with the modern email policy."""
    return [read_message(p) for p in mail_files(maildir)]


def envelope_recipients(message: EmailMessage) -> list[str]:
    """The SMTP envelope recipients recorded by the sink."""
    raw = str(message.get("X-Envelope-To", ""))
    return [r.strip() for r in raw.split(",") if r.strip()]


def text_body(message: EmailMessage) -> str:
    """The plain-text body (or the HTML one when there is no plain text)."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content: Any = part.get_content()
    return content if isinstance(content, str) else content.decode("utf-8", "replace")


def _describe(messages: Sequence[EmailMessage]) -> str:
    if not messages:
        return "the mailbox is empty"
    shown = [f"{m.get('To', '?')!s}: {m.get('Subject', '')!s}" for m in messages[-10:]]
    return f"{len(messages)} message(s), latest: " + "; ".join(shown)


async def wait_for_mails(
    maildir: Path,
    predicate: MailPredicate | None = None,
    *,
    count: int = 1,
    timeout: float = 30.0,
    poll_interval: float = 0.1,
) -> list[EmailMessage]:
    """Wait until at least ``count`` stored messages match; return all that match."""
    deadline = time.monotonic() + timeout
    while True:
        messages = await asyncio.to_thread(read_mailbox, maildir)
        matching = [m for m in messages if predicate is None or predicate(m)]
        if len(matching) >= count:
            return matching
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"{len(matching)} of {count} expected message(s) in {maildir} "
                f"after {timeout:.0f}s; {_describe(messages)}"
            )
        await asyncio.sleep(poll_interval)


async def wait_for_mail(
    maildir: Path,
    predicate: MailPredicate | None = None,
    timeout: float = 30.0,
) -> EmailMessage:
    """The first stored message matching ``predicate``, waiting up to ``timeout`` seconds."""
    return (await wait_for_mails(maildir, predicate, timeout=timeout))[0]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m opr_shared.smtpsink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--maildir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    collector.settle()
    eventloop.run(serve(args.host, args.port, args.maildir))


if __name__ == "__main__":
    main()
