"""The sample consumer: what it records, that redelivery changes nothing, and that it
works against the running system's Kafka."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from opr_shared.contracts.snapshot import golden_envelope
from opr_shared.devstack.stack import Stack
from opr_shared.events.catalogue import (
    FormSubmitted,
    RegistrationCompleted,
    RegistrationWithdrawn,
)
from opr_shared.events.envelope import Envelope
from sis_consumer.consumer import apply, run
from sis_consumer.store import EnrolmentStore


def envelope_for(event: type[Any], student_no: str, **payload: Any) -> Envelope:
    golden = golden_envelope(event)
    return golden.model_copy(
        update={
            "event_id": uuid.uuid4(),
            "subject": student_no,
            "payload": {**golden.payload, "student_no": student_no, **payload},
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = EnrolmentStore(tmp_path / "sis.sqlite3")
    yield s
    s.close()


def test_a_completed_registration_is_recorded_once(store: EnrolmentStore) -> None:
    completed = envelope_for(RegistrationCompleted, "20270001")
    assert apply(store, completed.to_bytes()) == "recorded"
    assert apply(store, completed.to_bytes()) == "duplicate"
    enrolment = store.get("20270001")
    assert enrolment is not None
    assert enrolment.status == "registered"
    assert enrolment.outstanding == [i["item"] for i in completed.payload["outstanding"]]
    assert store.count() == 1


def test_a_withdrawal_after_completion_marks_the_enrolment(store: EnrolmentStore) -> None:
    apply(store, envelope_for(RegistrationCompleted, "20270002").to_bytes())
    apply(store, envelope_for(RegistrationWithdrawn, "20270002").to_bytes())
    enrolment = store.get("20270002")
    assert enrolment is not None
    assert enrolment.status == "withdrawn"


def test_other_events_and_versions_are_skipped(store: EnrolmentStore) -> None:
    assert apply(store, envelope_for(FormSubmitted, "20270003").to_bytes()) == "skipped"
    v2 = envelope_for(RegistrationCompleted, "20270003").model_copy(update={"schema_version": 2})
    assert apply(store, v2.to_bytes()) == "skipped"
    assert apply(store, b"{not json") == "unreadable"
    assert store.count() == 0


@pytest.mark.e2e
async def test_against_the_running_system(system: Stack, tmp_path: Path) -> None:
    """Completed registrations on the live topic reach the SIS table, once each."""
    store = EnrolmentStore(tmp_path / "live.sqlite3")
    stop = asyncio.Event()
    task = asyncio.create_task(
        run(system.endpoints.kafka_bootstrap, store, group_id=f"sis-{uuid.uuid4().hex}", stop=stop)
    )
    student_no = f"29{uuid.uuid4().int % 10**6:06d}"
    completed = envelope_for(
        RegistrationCompleted, student_no, personal_email=f"sis-{student_no}@example.com"
    )
    producer = AIOKafkaProducer(bootstrap_servers=system.endpoints.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for _ in range(2):  # delivered twice, as at-least-once delivery may
            await producer.send_and_wait(
                completed.topic,
                completed.to_bytes(),
                key=completed.key,
                headers=[(k, v.encode()) for k, v in completed.headers().items()],
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while store.get(student_no) is None and loop.time() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # the second copy has been read by now
    finally:
        await producer.stop()
        stop.set()
        await task
    enrolment = store.get(student_no)
    assert enrolment is not None
    assert enrolment.status == "registered"
    rows = store.db.execute(
        "SELECT COUNT(*) FROM handled_events WHERE event_id = ?", (str(completed.event_id),)
    ).fetchone()
    assert rows == (1,)
    store.close()
