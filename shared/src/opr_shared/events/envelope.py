"""The one envelope every event travels in, and the base class of every payload.

Wire format (Kafka):
- topic: ``<producer>.events`` (one topic per producing service);
- key: the envelope's ``subject`` (the student number), so one student's events
  from one producer land on one partition and stay in order;
- headers: ``event_type``, ``schema_version``, ``event_id``, ``correlation_id``
  (consumers may route on the headers without decoding the value);
- value: the envelope as UTF-8 JSON, its ``payload`` an object.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

SERVICES: tuple[str, ...] = ("identity", "registration", "documents", "notifier", "card")

HEADER_EVENT_TYPE = "event_type"
HEADER_SCHEMA_VERSION = "schema_version"
HEADER_EVENT_ID = "event_id"
HEADER_CORRELATION_ID = "correlation_id"


def topic_for(producer: str) -> str:
    """The topic a producing service publishes to."""
    if producer not in SERVICES:
        raise ValueError(f"unknown producer {producer!r}")
    return f"{producer}.events"


def dead_letter_topic_for(consumer: str) -> str:
    """The dead-letter topic of a consuming service (messages it could not handle)."""
    return f"{topic_for(consumer)}.dlq"


def utcnow() -> datetime:
    return datetime.now(UTC)


class EventPayload(BaseModel):
    """Base of every payload in the catalogue.

    Subclasses set ``event_type``, ``schema_version`` and ``producer``. Readers
    ignore fields they do not know (``extra="ignore"``), which is what lets a
    producer add an optional field without breaking an older consumer.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str]

    @classmethod
    def topic(cls) -> str:
        return topic_for(cls.producer)


class Envelope(BaseModel):
    """Metadata common to every event; ``payload`` holds the event's own fields."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: uuid.UUID = Field(description="Unique id; consumers deduplicate on it.")
    event_type: str = Field(description="Catalogue name of the payload, e.g. FormSubmitted.")
    schema_version: int = Field(ge=1, description="Version of the payload schema.")
    occurred_at: datetime = Field(description="When the state change happened (UTC).")
    producer: str = Field(description="The service that produced the event.")
    correlation_id: str = Field(description="Id shared by everything one request set off.")
    causation_id: str | None = Field(
        default=None, description="event_id (or request id) of what directly caused this event."
    )
    subject: str = Field(description="Student number; also the Kafka key.")
    payload: dict[str, Any] = Field(description="The event's fields, per its catalogue schema.")

    @field_validator("occurred_at")
    @classmethod
    def _must_be_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at must carry a timezone")
        return value.astimezone(UTC)

    @classmethod
    def wrap(
        cls,
        payload: EventPayload,
        *,
        subject: str,
        correlation_id: str,
        causation_id: str | None = None,
        occurred_at: datetime | None = None,
        event_id: uuid.UUID | None = None,
    ) -> Self:
        return cls(
            event_id=event_id or uuid.uuid4(),
            event_type=payload.event_type,
            schema_version=payload.schema_version,
            occurred_at=occurred_at or utcnow(),
            producer=payload.producer,
            correlation_id=correlation_id,
            causation_id=causation_id,
            subject=subject,
            payload=payload.model_dump(mode="json"),
        )

    @property
    def topic(self) -> str:
        return topic_for(self.producer)

    @property
    def key(self) -> bytes:
        return self.subject.encode()

    def headers(self) -> dict[str, str]:
        return {
            HEADER_EVENT_TYPE: self.event_type,
            HEADER_SCHEMA_VERSION: str(self.schema_version),
            HEADER_EVENT_ID: str(self.event_id),
            HEADER_CORRELATION_ID: self.correlation_id,
        }

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Self:
        return cls.model_validate_json(raw)
