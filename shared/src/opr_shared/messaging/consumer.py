"""Consuming events: envelope → idempotency guard → handler, bounded retry, dead letters.

Each service declares what it consumes in one :class:`Subscriptions` table
(event class → handler). :class:`EventConsumer` takes one raw Kafka record and:

1. skips event types the service does not handle (by header, without decoding);
2. decodes the envelope and payload; a record that cannot be decoded is a poison
   message and goes straight to the dead-letter topic;
3. runs the handler inside a unit-of-work transaction that also records the
   event's processed mark, so a redelivered event changes nothing; records of
   one partition that are waiting together share one transaction
   (:meth:`EventConsumer.handle_many`), or are handled one at a time if that
   fails;
4. retries a failing handler a bounded number of times, then dead-letters the
   record with the error and moves on;
5. lets infrastructure errors (database or broker unreachable) propagate, so the
   record is not acknowledged and is delivered again once things recover,
   instead of filling the dead-letter topic during an outage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from prometheus_client import Counter
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError

from opr_shared.events.catalogue import UnknownEvent, parse_payload
from opr_shared.events.envelope import (
    HEADER_EVENT_TYPE,
    HEADER_SCHEMA_VERSION,
    Envelope,
    EventPayload,
    dead_letter_topic_for,
    topic_for,
)
from opr_shared.jsonlog import correlation_id_var
from opr_shared.store.mongo import AlreadyProcessed, Transaction, UnitOfWork

log = logging.getLogger(__name__)

P = TypeVar("P", bound=EventPayload)
Handler = Callable[[Transaction, Envelope, Any], Awaitable[None]]

CONSUMED = Counter(
    "events_consumed_total", "Consumed records by outcome", ["service", "event_type", "outcome"]
)

# Errors that say "the world is down", not "this message is bad".
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionFailure,
    ServerSelectionTimeoutError,
    ConnectionError,
    TimeoutError,
)

DLQ_HEADER_PREFIX = "dlq_"


class Outcome(StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"
    DEAD_LETTERED = "dead_lettered"
    FAILED = "failed"  # only when dead-lettering is off (replays)


@dataclass(frozen=True)
class Record:
    """A Kafka record as the consumer sees it (independent of the client library)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Mapping[str, bytes]

    def header(self, name: str) -> str | None:
        raw = self.headers.get(name)
        return raw.decode(errors="replace") if raw is not None else None


class Subscriptions:
    """The table of what one service consumes: event class (type and version) → handler.

    A version of an event type that the service does not subscribe to is skipped,
    not dead-lettered: during a migration a producer publishes both versions and
    each consumer reads the one it knows.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self._handlers: dict[tuple[str, int], tuple[type[EventPayload], Handler]] = {}

    def on(
        self, event: type[P]
    ) -> Callable[
        [Callable[[Transaction, Envelope, P], Awaitable[None]]],
        Callable[[Transaction, Envelope, P], Awaitable[None]],
    ]:
        def register(
            handler: Callable[[Transaction, Envelope, P], Awaitable[None]],
        ) -> Callable[[Transaction, Envelope, P], Awaitable[None]]:
            self.add(event, handler)
            return handler

        return register

    def add(
        self, event: type[P], handler: Callable[[Transaction, Envelope, P], Awaitable[None]]
    ) -> None:
        key = (event.event_type, event.schema_version)
        if key in self._handlers:
            raise ValueError(
                f"{self.service} already handles {event.event_type} v{event.schema_version}"
            )
        self._handlers[key] = (event, handler)

    def handler_for(self, event_type: str, version: int) -> Handler | None:
        entry = self._handlers.get((event_type, version))
        return entry[1] if entry else None

    @property
    def events(self) -> list[type[EventPayload]]:
        """The event classes handled, by type and version."""
        return [cls for _, (cls, _h) in sorted(self._handlers.items())]

    @property
    def event_types(self) -> list[str]:
        return sorted({event_type for event_type, _ in self._handlers})

    @property
    def topics(self) -> list[str]:
        return sorted({topic_for(cls.producer) for cls, _ in self._handlers.values()})


@dataclass(frozen=True)
class _Decoded:
    """A record with its event decoded and the handler that takes it."""

    record: Record
    envelope: Envelope
    payload: EventPayload
    handler: Handler

    async def work(self, tx: Transaction) -> None:
        """The handler on this event, logging under the event's correlation id."""
        token = correlation_id_var.set(self.envelope.correlation_id)
        try:
            await self.handler(tx, self.envelope, self.payload)
        finally:
            correlation_id_var.reset(token)


class DeadLetterSink(Protocol):
    async def dead_letter(self, record: Record, error: str, attempts: int) -> None: ...


class KafkaDeadLetterSink:
    """Publishes failed records to ``<service>.events.dlq`` with the error in headers."""

    def __init__(self, producer: Any, service: str) -> None:
        self.producer = producer
        self.service = service
        self.topic = dead_letter_topic_for(service)

    async def dead_letter(self, record: Record, error: str, attempts: int) -> None:
        headers = [(k, v) for k, v in record.headers.items() if not k.startswith(DLQ_HEADER_PREFIX)]
        headers += [
            ("dlq_error", error[:2000].encode()),
            ("dlq_source_topic", record.topic.encode()),
            ("dlq_source_partition", str(record.partition).encode()),
            ("dlq_source_offset", str(record.offset).encode()),
            ("dlq_consumer", self.service.encode()),
            ("dlq_attempts", str(attempts).encode()),
            ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        await self.producer.send_and_wait(self.topic, record.value, key=record.key, headers=headers)


class EventConsumer:
    def __init__(
        self,
        subscriptions: Subscriptions,
        uow: UnitOfWork,
        dead_letters: DeadLetterSink,
        *,
        max_attempts: int = 3,
        retry_backoff_seconds: float = 0.2,
    ) -> None:
        self.subscriptions = subscriptions
        self.uow = uow
        self.dead_letters = dead_letters
        self.max_attempts = max_attempts
        self.retry_backoff_seconds = retry_backoff_seconds
        self.service = subscriptions.service

    async def handle(self, record: Record, *, dead_letter_on_failure: bool = True) -> Outcome:
        decoded = await self._decode(record, dead_letter_on_failure)
        if isinstance(decoded, Outcome):
            return decoded
        return await self._handle_decoded(decoded, dead_letter_on_failure)

    async def handle_many(self, records: Sequence[Record]) -> list[Outcome]:
        """Several records of one partition, in order, their handlers in one unit
        of work (one transaction) where they can be: a service behind on a
        partition catches up with one commit for the lot instead of one each.

        Should any of them fail, or have been handled before, or the transaction
        meet a write conflict (it is tried once), it rolls back and each record
        is handled on its own as :meth:`handle` does (with its retries and dead
        letter): the outcome is the same as one at a time.
        """
        if len(records) == 1:
            return [await self.handle(records[0])]
        prepared = [await self._decode(record, True) for record in records]
        decoded = [p for p in prepared if isinstance(p, _Decoded)]
        if len(decoded) > 1:
            try:
                await self.uow.run_events([(d.envelope.event_id, d.work) for d in decoded])
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception as exc:
                log.info(
                    "records not handled together; handling them one at a time",
                    extra={"records": len(decoded), "reason": f"{type(exc).__name__}: {exc}"},
                )
            else:
                return [
                    p
                    if isinstance(p, Outcome)
                    else self._count(p.envelope.event_type, Outcome.HANDLED)
                    for p in prepared
                ]
        return [
            p if isinstance(p, Outcome) else await self._handle_decoded(p, True) for p in prepared
        ]

    async def _decode(self, record: Record, dead_letter_on_failure: bool) -> Outcome | _Decoded:
        """The record's event and handler, or the outcome if there is nothing to
        handle (a type the service does not consume, or a poison record)."""
        event_type = record.header(HEADER_EVENT_TYPE)
        version = record.header(HEADER_SCHEMA_VERSION)
        if (
            event_type is not None
            and version is not None
            and version.isdigit()
            and self.subscriptions.handler_for(event_type, int(version)) is None
        ):
            return self._count(event_type, Outcome.SKIPPED)
        try:
            envelope = Envelope.from_bytes(record.value)
            handler = self.subscriptions.handler_for(envelope.event_type, envelope.schema_version)
            if handler is None:
                return self._count(envelope.event_type, Outcome.SKIPPED)
            payload = parse_payload(envelope)
        except (ValidationError, UnknownEvent, ValueError) as exc:
            return await self._give_up(
                record, event_type or "?", f"undecodable: {exc}", 1, dead_letter_on_failure
            )
        return _Decoded(record, envelope, payload, handler)

    async def _handle_decoded(self, decoded: _Decoded, dead_letter_on_failure: bool) -> Outcome:
        token = correlation_id_var.set(decoded.envelope.correlation_id)
        try:
            return await self._handle_with_retries(decoded, dead_letter_on_failure)
        finally:
            correlation_id_var.reset(token)

    async def _handle_with_retries(
        self, decoded: _Decoded, dead_letter_on_failure: bool
    ) -> Outcome:
        envelope = decoded.envelope
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.uow.run(decoded.work, handled_event_id=envelope.event_id)
                return self._count(envelope.event_type, Outcome.HANDLED)
            except AlreadyProcessed:
                return self._count(envelope.event_type, Outcome.DUPLICATE)
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception as exc:
                if attempt >= self.max_attempts:
                    log.exception(
                        "handler failed for good",
                        extra={
                            "event_type": envelope.event_type,
                            "event_id": str(envelope.event_id),
                        },
                    )
                    return await self._give_up(
                        decoded.record,
                        envelope.event_type,
                        f"{type(exc).__name__}: {exc}",
                        attempt,
                        dead_letter_on_failure,
                    )
                log.warning(
                    "handler failed, retrying",
                    extra={"event_type": envelope.event_type, "attempt": attempt},
                )
                await asyncio.sleep(self.retry_backoff_seconds * 2 ** (attempt - 1))

    async def _give_up(
        self, record: Record, event_type: str, error: str, attempts: int, dead_letter: bool
    ) -> Outcome:
        if not dead_letter:
            return self._count(event_type, Outcome.FAILED)
        await self.dead_letters.dead_letter(record, error, attempts)
        log.error(
            "record dead-lettered",
            extra={
                "event_type": event_type,
                "topic": record.topic,
                "offset": record.offset,
                "error": error[:300],
            },
        )
        return self._count(event_type, Outcome.DEAD_LETTERED)

    def _count(self, event_type: str, outcome: Outcome) -> Outcome:
        CONSUMED.labels(self.service, event_type, outcome.value).inc()
        return outcome
