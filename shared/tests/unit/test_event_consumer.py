"""The consumer pipeline against fakes: routing, idempotency, retries, dead letters."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import pytest
from opr_shared.events.catalogue import AdmissionRoute, IntakeScheduled, StudentAdmitted
from opr_shared.events.envelope import Envelope
from opr_shared.messaging.consumer import EventConsumer, Outcome, Record, Subscriptions
from opr_shared.store.mongo import AlreadyProcessed, Transaction
from pymongo.errors import ServerSelectionTimeoutError


class FakeUnitOfWork:
    """Runs the work at once; remembers processed ids like the real one, and which
    events each committed transaction handled."""

    def __init__(self) -> None:
        self.processed: set[uuid.UUID] = set()
        self.db: Any = None
        self.committed: list[list[uuid.UUID]] = []

    async def run_events(
        self, steps: list[tuple[uuid.UUID, Callable[[Transaction], Awaitable[object]]]]
    ) -> None:
        if any(event_id in self.processed for event_id, _ in steps):
            raise AlreadyProcessed("one of them")
        hooks: list[Callable[[], None]] = []
        for _, work in steps:
            tx = Transaction(db=None, session=None, producer="registration")  # type: ignore[arg-type]
            await work(tx)  # an exception leaves nothing recorded, like a rollback
            hooks += tx.committed_hooks
        self.processed.update(event_id for event_id, _ in steps)
        self.committed.append([event_id for event_id, _ in steps])
        for hook in hooks:
            hook()

    async def run(
        self,
        work: Callable[[Transaction], Awaitable[Any]],
        *,
        handled_event_id: uuid.UUID | None = None,
        causation_id: str | None = None,
    ) -> Any:
        if handled_event_id in self.processed:
            raise AlreadyProcessed(str(handled_event_id))
        tx = Transaction(db=None, session=None, producer="registration")  # type: ignore[arg-type]
        result = await work(tx)  # an exception leaves nothing recorded, like a rollback
        if handled_event_id is not None:
            self.processed.add(handled_event_id)
            self.committed.append([handled_event_id])
        for hook in tx.committed_hooks:
            hook()
        return result


class FakeDeadLetters:
    def __init__(self) -> None:
        self.records: list[tuple[Record, str, int]] = []

    async def dead_letter(self, record: Record, error: str, attempts: int) -> None:
        self.records.append((record, error, attempts))


def admitted(student_no: str = "20260001") -> Envelope:
    payload = StudentAdmitted(
        student_no=student_no,
        jupas_app_no="12345678",
        surname="Chan",
        given_names="Tai Man",
        chinese_name=None,
        date_of_birth=date(2008, 3, 1),
        personal_email="tm.chan@example.com",
        mobile="+85291234567",
        programme_code="BSC-CS",
        programme_name="Computer Science",
        intake_year=2026,
        admission_route=AdmissionRoute.JUPAS,
    )
    return Envelope.wrap(payload, subject=student_no, correlation_id="c-1")


def record(envelope: Envelope, offset: int = 0) -> Record:
    return Record(
        topic=envelope.topic,
        partition=0,
        offset=offset,
        key=envelope.key,
        value=envelope.to_bytes(),
        headers={k: v.encode() for k, v in envelope.headers().items()},
    )


def make_consumer(handler: Any) -> tuple[EventConsumer, FakeUnitOfWork, FakeDeadLetters]:
    subs = Subscriptions("registration")
    subs.add(StudentAdmitted, handler)
    uow, dead = FakeUnitOfWork(), FakeDeadLetters()
    consumer = EventConsumer(subs, uow, dead, max_attempts=3, retry_backoff_seconds=0)  # type: ignore[arg-type]
    return consumer, uow, dead


async def test_same_event_three_times_has_one_effect() -> None:
    effects: list[str] = []

    async def handler(tx: Transaction, env: Envelope, event: StudentAdmitted) -> None:
        effects.append(event.student_no)

    consumer, _, dead = make_consumer(handler)
    env = admitted()
    outcomes = [await consumer.handle(record(env, offset=i)) for i in range(3)]
    assert outcomes == [Outcome.HANDLED, Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert effects == ["20260001"]
    assert dead.records == []


async def test_types_not_subscribed_are_skipped_without_decoding() -> None:
    async def handler(tx: Transaction, env: Envelope, event: StudentAdmitted) -> None:
        raise AssertionError("must not be called")

    consumer, _, dead = make_consumer(handler)
    payload = IntakeScheduled(
        intake_year=2026,
        registration_deadline="2026-08-14T09:00:00Z",  # type: ignore[arg-type]
        term_start=date(2026, 9, 1),
        age_cutoff=date(2026, 9, 1),
    )
    env = Envelope.wrap(payload, subject="intake:2026", correlation_id="c")
    rec = record(env)
    garbled = Record(rec.topic, 0, 1, rec.key, b"\xff not json", rec.headers)
    assert await consumer.handle(garbled) == Outcome.SKIPPED
    assert dead.records == []


async def test_poison_message_goes_to_dead_letters_at_once() -> None:
    calls = 0

    async def handler(tx: Transaction, env: Envelope, event: StudentAdmitted) -> None:
        nonlocal calls
        calls += 1

    consumer, _, dead = make_consumer(handler)
    env = admitted()
    good = record(env)
    poison = Record(good.topic, 0, 7, good.key, b'{"event_type": "StudentAdmitted"', good.headers)
    assert await consumer.handle(poison) == Outcome.DEAD_LETTERED
    assert calls == 0
    [(rec, error, attempts)] = dead.records
    assert rec.offset == 7
    assert attempts == 1
    assert error.startswith("undecodable")
    # and the next message is still handled
    assert await consumer.handle(good) == Outcome.HANDLED
    assert calls == 1


async def test_bad_payload_is_poison_too() -> None:
    async def handler(tx: Transaction, env: Envelope, event: StudentAdmitted) -> None:
        pass

    consumer, _, dead = make_consumer(handler)
    env = admitted()
    broken = env.model_copy(update={"payload": {**env.payload, "intake_year": "next year"}})
    assert await consumer.handle(record(broken)) == Outcome.DEAD_LETTERED
    assert "intake_year" in dead.records[0][1]


async def test_failing_handler_is_retried_then_dead_lettered() -> None:
    attempts = 0

    async def handler(tx: Transaction, env: Envelope, event: StudentAdmitted) -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("rule broken")

    consumer, uow, dead = make_consumer(handler)
    env = admitted()
    assert await consumer.handle(record(env)) == Outcome.DEAD_LETTERED
    assert attempts == 3
    assert dead.records[0][1] == "RuntimeError: rule broken"
    assert dead.records[0][2] == 3
    assert env.event_id not in uow.processed


async def test_handler_recovering_within_the_retries_is_handled_once() -> None:
    attempts = 0

    async def handler(tx: Transaction, env: Envelope, event: StudentAdmitted) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 2:
            raise RuntimeError("flaky")

    consumer, _, dead = make_consumer(handler)
    assert await consumer.handle(record(admitted())) == Outcome.HANDLED
    assert attempts == 2
    assert dead.records == []


async def test_infrastructure_errors_are_not_dead_lettered() -> None:
    async def handler(tx: Transaction, env: Envelope, event: StudentAdmitted) -> None:
        raise ServerSelectionTimeoutError("database unreachable")

    consumer, _, dead = make_consumer(handler)
    with pytest.raises(ServerSelectionTimeoutError):
        await consumer.handle(record(admitted()))
    assert dead.records == []


async def test_replay_mode_reports_failure_instead_of_dead_lettering() -> None:
    async def handler(tx: Transaction, env: Envelope, event: StudentAdmitted) -> None:
        raise RuntimeError("still broken")

    consumer, _, dead = make_consumer(handler)
    outcome = await consumer.handle(record(admitted()), dead_letter_on_failure=False)
    assert outcome == Outcome.FAILED
    assert dead.records == []


def test_a_service_cannot_subscribe_twice_to_one_event() -> None:
    subs = Subscriptions("card")

    async def handler(tx: Transaction, env: Envelope, event: StudentAdmitted) -> None:
        pass

    subs.add(StudentAdmitted, handler)
    with pytest.raises(ValueError, match="already handles"):
        subs.add(StudentAdmitted, handler)
    assert subs.topics == ["identity.events"]


async def test_a_version_the_service_does_not_read_is_skipped_not_dead_lettered() -> None:
    async def handler(tx: Transaction, env: Envelope, event: StudentAdmitted) -> None:
        raise AssertionError("v1 handler must not see v2")

    consumer, _, dead = make_consumer(handler)
    v2 = admitted().model_copy(update={"schema_version": 2, "payload": {"changed": "shape"}})
    assert await consumer.handle(record(v2)) == Outcome.SKIPPED
    headerless = Record("identity.events", 0, 1, b"k", v2.to_bytes(), {})
    assert await consumer.handle(headerless) == Outcome.SKIPPED
    assert dead.records == []


# --- records waiting together: one transaction -----------------------------------


def effect_after_commit(effects: list[str], fail_for: str | None = None) -> Any:
    """A handler whose effect shows only once its transaction has committed."""

    async def handler(tx: Transaction, env: Envelope, event: StudentAdmitted) -> None:
        if event.student_no == fail_for:
            raise RuntimeError(f"rule broken for {fail_for}")
        tx.after_commit(lambda: effects.append(event.student_no))

    return handler


async def test_records_waiting_together_are_handled_in_one_transaction() -> None:
    effects: list[str] = []
    consumer, uow, dead = make_consumer(effect_after_commit(effects))
    first, second, third = (admitted(f"2026000{i}") for i in (1, 2, 3))
    other = IntakeScheduled(
        intake_year=2026,
        registration_deadline="2026-08-14T09:00:00Z",  # type: ignore[arg-type]
        term_start=date(2026, 9, 1),
        age_cutoff=date(2026, 9, 1),
    )
    skipped = record(Envelope.wrap(other, subject="intake:2026", correlation_id="c"), 1)
    outcomes = await consumer.handle_many(
        [record(first, 0), skipped, record(second, 2), record(third, 3)]
    )
    assert outcomes == [Outcome.HANDLED, Outcome.SKIPPED, Outcome.HANDLED, Outcome.HANDLED]
    assert uow.committed == [[first.event_id, second.event_id, third.event_id]]
    assert effects == ["20260001", "20260002", "20260003"]
    assert dead.records == []


async def test_a_failing_record_among_others_is_dead_lettered_alone() -> None:
    effects: list[str] = []
    consumer, uow, dead = make_consumer(effect_after_commit(effects, fail_for="20260002"))
    first, second, third = (admitted(f"2026000{i}") for i in (1, 2, 3))
    outcomes = await consumer.handle_many([record(first, 0), record(second, 1), record(third, 2)])
    assert outcomes == [Outcome.HANDLED, Outcome.DEAD_LETTERED, Outcome.HANDLED]
    # The shared transaction rolled back; then one at a time, the failing one retried.
    assert uow.committed == [[first.event_id], [third.event_id]]
    assert effects == ["20260001", "20260003"]
    [(rec, error, attempts)] = dead.records
    assert (rec.offset, attempts) == (1, 3)
    assert error == "RuntimeError: rule broken for 20260002"


async def test_records_handled_before_are_duplicates_and_poison_is_dead_lettered() -> None:
    effects: list[str] = []
    consumer, uow, dead = make_consumer(effect_after_commit(effects))
    first, second = admitted("20260001"), admitted("20260002")
    assert await consumer.handle(record(first, 0)) == Outcome.HANDLED
    good = record(second, 2)
    poison = Record(good.topic, 0, 3, good.key, b"{not json", good.headers)
    outcomes = await consumer.handle_many([record(first, 1), good, poison])
    assert outcomes == [Outcome.DUPLICATE, Outcome.HANDLED, Outcome.DEAD_LETTERED]
    assert uow.committed == [[first.event_id], [second.event_id]]
    assert effects == ["20260001", "20260002"]
    assert [r.offset for r, _, _ in dead.records] == [3]


async def test_infrastructure_errors_in_a_batch_reach_the_lane() -> None:
    async def handler(tx: Transaction, env: Envelope, event: StudentAdmitted) -> None:
        raise ServerSelectionTimeoutError("database unreachable")

    consumer, uow, dead = make_consumer(handler)
    with pytest.raises(ServerSelectionTimeoutError):
        await consumer.handle_many(
            [record(admitted("20260001"), 0), record(admitted("20260002"), 1)]
        )
    assert uow.committed == []
    assert dead.records == []
