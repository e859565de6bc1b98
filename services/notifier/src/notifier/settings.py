"""Settings of the notifier service."""

from __future__ import annotations

from opr_shared.settings import ServiceSettings
from pydantic import Field, SecretStr


class Settings(ServiceSettings):
    service_name: str = "notifier"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = 10.0
    smtp_local_hostname: str | None = Field(
        default=None,
        description="The name the notifier gives itself in EHLO; by default the machine's "
        "fully qualified name, looked up once.",
    )
    mail_from: str = "Academic Registry <registry@university.example>"
    enquiry_email: str = Field(
        default="progreg@university.example",
        description="The registry's enquiry address, printed in every message.",
    )
    portal_path: str = Field(
        default="/", description="Path of the student portal on PUBLIC_BASE_URL, for links."
    )
    delivery_poll_seconds: float = Field(default=1.0, gt=0)
    # Messages handed to the mail server at once (each on its own SMTP connection).
    # A delivery is mostly waiting (the database, the mail server), so a few at once
    # pace the mail by their answer times: with 4, an intake of 8,000 at 200 students
    # at once had mail 1,000-2,000 messages behind for most of the run.
    delivery_concurrency: int = Field(default=16, ge=1, le=64)
    delivery_max_attempts: int = Field(default=8, ge=1)
    delivery_max_backoff_seconds: float = 300.0
    delivery_lease_seconds: float = Field(
        default=120.0, gt=0, description="How long a claim lasts before another worker may retry."
    )
    reminder_poll_seconds: float = Field(default=300.0, gt=0)
    reminder_days_before: tuple[int, ...] = Field(
        default=(7, 3, 1), description="Days before the deadline on which reminders go out."
    )

    @property
    def portal_url(self) -> str:
        return self.public_base_url.rstrip("/") + "/" + self.portal_path.lstrip("/")
