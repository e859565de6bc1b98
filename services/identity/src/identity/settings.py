"""Settings of the identity service."""

from __future__ import annotations

from typing import Self

from opr_shared.settings import ServiceSettings
from pydantic import Field, SecretStr, model_validator


class Settings(ServiceSettings):
    service_name: str = "identity"
    activation_token_ttl_hours: int = Field(default=14 * 24, ge=1)
    import_chunk_size: int = Field(default=200, ge=1, le=2000)
    import_max_rows: int = Field(default=50_000, ge=1, description="Rows one import may carry.")
    import_max_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Largest roster body (JSON or CSV) one import may send; 413 above.",
    )

    university_email_domain: str = Field(
        default="university.example",
        pattern=r"^[a-z0-9-]+(\.[a-z0-9-]+)+$",
        description="Students' addresses are <student_no>@connect.<domain>.",
    )
    access_token_ttl_seconds: int = Field(default=15 * 60, ge=60, le=24 * 3600)
    signing_key_passphrase: SecretStr | None = Field(
        default=None,
        description="Encrypts the private signing keys and seals staff TOTP secrets at rest; "
        "required in production.",
    )
    signing_key_cache_seconds: float = Field(default=30.0, ge=0)

    lockout_max_failures: int = Field(default=5, ge=1)
    lockout_window_minutes: int = Field(default=15, ge=1)
    lockout_minutes: int = Field(default=15, ge=1)
    login_audit_retention_days: int = Field(default=400, ge=1)

    # Argon2id cost: OWASP's recommended configuration (19 MiB, two passes, one
    # lane; about 30 ms of one core here). Hashes made with other parameters are
    # rehashed at the next successful sign-in.
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=19 * 1024, ge=8 * 1024)
    argon2_parallelism: int = Field(default=1, ge=1)
    # Hashes computed at once per process (each holds argon2_memory_kib and one
    # core per lane): bounds resident memory and CPU under a burst of logins.
    argon2_max_concurrent: int = Field(default=2, ge=1)

    seed_demo_staff: bool | None = Field(
        default=None,
        description=(
            "Create the documented demo staff accounts at start-up. Default: yes in "
            "development and test, no in production (where asking for it is refused)."
        ),
    )

    @property
    def seeds_demo_staff(self) -> bool:
        if self.seed_demo_staff is None:
            return self.environment != "production"
        return self.seed_demo_staff

    @model_validator(mode="after")
    def _production_rules(self) -> Self:
        if self.environment != "production":
            return self
        problems = []
        if self.seed_demo_staff:
            problems.append("SEED_DEMO_STAFF: demo staff accounts are never created in production")
        passphrase = self.signing_key_passphrase
        if passphrase is None or len(passphrase.get_secret_value()) < 16:
            problems.append("SIGNING_KEY_PASSPHRASE is unset or shorter than 16 characters")
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self
