"""Settings every service reads from its environment (one process, one service).

Secrets have no defaults that work in production: in ``ENVIRONMENT=production`` a
missing or well-known development value is refused at start-up.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that are fine on a laptop and must never reach production.
DEVELOPMENT_SECRETS = frozenset({"", "dev", "development", "local", "changeme", "minioadmin"})


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    service_name: str = Field(description="Set by each service's settings class.")
    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"

    http_host: str = "0.0.0.0"  # noqa: S104 - containers listen on every interface
    http_port: int = 8000
    public_base_url: str = Field(
        default="http://127.0.0.1:8080", description="The one origin users reach."
    )

    jwks_url: str | None = Field(
        default=None,
        description="Identity's JWKS; default: /api/identity/.well-known/jwks.json on the origin.",
    )

    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    kafka_client_id: str | None = None
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = Field(default=None, description="CA bundle of the brokers' TLS.")
    kafka_session_timeout_ms: int = Field(default=10_000, ge=6_000)
    kafka_fetch_max_wait_ms: int = Field(
        default=100,
        ge=10,
        le=5_000,
        description=(
            "How long the broker may hold a consumer's fetch when nothing is new. Kafka"
            " answers a held fetch as soon as a record arrives, so a longer wait only means"
            " fewer idle requests; the local broker (Tansu) holds it the whole time, so"
            " locally it is also the added delay per hop."
        ),
    )
    kafka_group_id: str | None = Field(
        default=None, description="Consumer group; defaults to the service name."
    )
    # Locally the services create their topics; in production the topics are
    # declared (partitions, replication) by the platform and this is off.
    kafka_create_topics: bool = True
    kafka_topic_partitions: int = Field(default=3, ge=1)

    mongodb_uri: SecretStr = SecretStr("mongodb://127.0.0.1:27117/?directConnection=true")
    mongodb_database: str | None = None
    mongodb_max_pool_size: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Connections this process opens to the database at most; requests beyond"
            " wait for one to free up (unset: the driver's default, 100)."
        ),
    )

    s3_endpoint: str | None = None
    s3_access_key: SecretStr = SecretStr("dev")
    s3_secret_key: SecretStr = SecretStr("dev")
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"

    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body a route takes unless it names its own limit (413 above).",
    )

    # Outbox relay
    outbox_relay_enabled: bool = True
    outbox_sweep_seconds: float = 2.0
    outbox_batch_size: int = 200
    # Watch the outbox with a change stream so rows other replicas commit are
    # published at once (rows this process commits wake its relay directly; a
    # sweep every outbox_sweep_seconds catches the rest either way).
    outbox_watch: bool = True
    outbox_max_backoff_seconds: float = 30.0
    outbox_linger_seconds: float = Field(
        default=0.0,
        ge=0,
        le=5,
        description=(
            "A relay woken by a commit waits this long before publishing, so the rows"
            " committed meanwhile go out in the same pass (0: at once)."
        ),
    )

    # Consumers
    consumer_enabled: bool = Field(
        default=True, description="False runs the API, relay and workers without consuming."
    )
    consumer_max_attempts: int = Field(default=3, ge=1)
    consumer_retry_backoff_seconds: float = 0.2
    consumer_batch_size: int = Field(
        default=4,
        ge=1,
        le=500,
        description=(
            "Records of one partition waiting together are handled in one database"
            " transaction, up to this many (1: a transaction per record)."
        ),
    )
    consumer_commit_interval_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description=(
            "A partition's offset is committed at most this often (0: after every record"
            " or burst). Handling is idempotent, so a crash costs at most this long of"
            " records read again and found already processed."
        ),
    )

    @property
    def database_name(self) -> str:
        return self.mongodb_database or self.service_name

    @property
    def signing_keys_url(self) -> str:
        return self.jwks_url or (
            f"{self.public_base_url.rstrip('/')}/api/identity/.well-known/jwks.json"
        )

    @property
    def bucket_name(self) -> str:
        return self.s3_bucket or self.service_name

    @model_validator(mode="after")
    def _refuse_development_secrets_in_production(self) -> Self:
        if self.environment != "production":
            return self
        problems = []
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            problems.append("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required with SASL")
        uri = self.mongodb_uri.get_secret_value()
        if "@" not in uri:
            problems.append("MONGODB_URI carries no credentials")
        if self.s3_endpoint is not None:
            for name, value in (
                ("S3_ACCESS_KEY", self.s3_access_key),
                ("S3_SECRET_KEY", self.s3_secret_key),
            ):
                if value.get_secret_value().lower() in DEVELOPMENT_SECRETS:
                    problems.append(f"{name} is unset or a development value")
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self
