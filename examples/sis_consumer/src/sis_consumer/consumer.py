"""Reading ``registration.events`` and recording enrolments."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer
from opr_shared.events.catalogue import (
    RegistrationCompleted,
    RegistrationIncomplete,
    RegistrationWithdrawn,
    UnknownEvent,
    parse_payload,
)
from opr_shared.events.envelope import Envelope, EventPayload, topic_for
from pydantic import ValidationError

from sis_consumer.store import EnrolmentStore

log = logging.getLogger(__name__)

TOPIC = topic_for("registration")
READS = {
    (cls.event_type, cls.schema_version)
    for cls in (RegistrationCompleted, RegistrationIncomplete, RegistrationWithdrawn)
}


def apply(store: EnrolmentStore, raw: bytes) -> str:
    """Apply one record; say what happened (recorded, duplicate, skipped, unreadable)."""
    try:
        envelope = Envelope.from_bytes(raw)
        if (envelope.event_type, envelope.schema_version) not in READS:
            return "skipped"
        event: EventPayload = parse_payload(envelope)
    except (ValidationError, UnknownEvent, ValueError) as exc:
        # A downstream team's choice: log and move on (its own dead-letter table
        # would be the next step).
        log.error("unreadable record on %s: %s", TOPIC, exc)
        return "unreadable"
    changed_at = envelope.occurred_at.isoformat()
    if isinstance(event, RegistrationWithdrawn):
        recorded = store.record(
            event_id=envelope.event_id,
            student_no=event.student_no,
            intake_year=event.intake_year,
            status="withdrawn",
            outstanding=[item.item for item in event.missing],
            changed_at=changed_at,
        )
    elif isinstance(event, RegistrationCompleted | RegistrationIncomplete):
        recorded = store.record(
            event_id=envelope.event_id,
            student_no=event.student_no,
            intake_year=event.intake_year,
            status="registered",
            outstanding=[item.item for item in event.outstanding],
            changed_at=changed_at,
        )
    else:
        return "skipped"
    return "recorded" if recorded else "duplicate"


async def run(
    bootstrap: str,
    store: EnrolmentStore,
    *,
    group_id: str = "sis-enrolment",
    stop: asyncio.Event | None = None,
) -> None:
    """Consume until ``stop`` is set; commit offsets only after the store committed."""
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=200,
    )
    await consumer.start()
    stop = stop or asyncio.Event()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    if record.value is not None:
                        apply(store, record.value)
            if batch:
                await consumer.commit()
    finally:
        await consumer.stop()
