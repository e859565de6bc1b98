"""The SMTP adapter: one message, one connection (the volumes here are modest)."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from notifier.settings import Settings


def smtp_sender(settings: Settings):  # type: ignore[no-untyped-def]
    async def send(message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            start_tls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            timeout=settings.smtp_timeout_seconds,
        )

    return send
