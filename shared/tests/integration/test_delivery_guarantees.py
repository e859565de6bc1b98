"""Outbox and idempotent-consumer guarantees on real Kafka and MongoDB servers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any

import anyio.to_thread
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends
from opr_shared.auth import (
    Principal,
    Role,
    current_principal,
    generate_private_key,
    public_jwk,
    sign_token,
)
from opr_shared.events.catalogue import AdmissionRoute, StudentAdmitted
from opr_shared.events.envelope import Envelope, dead_letter_topic_for
from opr_shared.localinfra import Endpoints
from opr_shared.messaging.consumer import Subscriptions
from opr_shared.messaging.deadletters import read_dead_letters, replay_dead_letters
from opr_shared.runtime import ServiceRuntime, create_http_app, db_of, uow_of
from opr_shared.settings import ServiceSettings
from opr_shared.store.mongo import OUTBOX, Transaction, UnitOfWork, ensure_indexes, plumbing_indexes
from opr_shared.store.outbox import OutboxRelay
from opr_shared.testing import kafka
from opr_shared.testing.journey import bearer
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient

pytestmark = pytest.mark.integration


def student_no() -> str:
    return str(uuid.uuid4().int)[:8]


def admitted(number: str, surname: str = "Chan") -> StudentAdmitted:
    return StudentAdmitted(
        student_no=number,
        jupas_app_no=None,
        surname=surname,
        given_names="Tai Man",
        chinese_name=None,
        date_of_birth=date(2008, 3, 1),
        personal_email="tm.chan@example.com",
        mobile="+85291234567",
        programme_code="BSC-CS",
        programme_name="Computer Science",
        intake_year=2026,
        admission_route=AdmissionRoute.NON_JUPAS,
    )


@pytest.fixture
async def mongo(infra: Endpoints) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    yield client
    await client.close()


@pytest.fixture
async def producer(infra: Endpoints) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await p.start()
    yield p
    await p.stop()


async def read_topic(infra: Endpoints, topic: str, want: Any, timeout: float = 20) -> list[Any]:
    return await kafka.read_topic(infra.kafka_bootstrap, topic, want, timeout=timeout, settle=1.0)


async def test_relay_publishes_committed_events_in_order_with_key_and_headers(
    infra: Endpoints, mongo: AsyncMongoClient[dict[str, Any]], producer: AIOKafkaProducer
) -> None:
    db_name = f"t_{uuid.uuid4().hex[:12]}"
    await ensure_indexes(mongo[db_name], plumbing_indexes())
    uow = UnitOfWork(mongo, db_name, "identity")
    number = student_no()
    surnames = ["Chan", "Cheung", "Chow", "Lee", "Wong"]
    for surname in surnames:

        async def work(tx: Transaction, s: str = surname) -> None:
            await tx.db.things.insert_one({"s": s}, session=tx.session)
            tx.publish(admitted(number, s), subject=number)

        await uow.run(work)

    # Nothing is published until a relay runs: the rows wait in the outbox.
    assert await mongo[db_name][OUTBOX].count_documents({"status": "pending"}) == 5
    relay = OutboxRelay(mongo[db_name], producer, service="identity")
    assert await relay.hold_lease()
    assert await relay.relay_once() == 5
    assert await mongo[db_name][OUTBOX].count_documents({"status": "sent"}) == 5

    records = await read_topic(infra, "identity.events", lambda m: m.key == number.encode())
    assert [Envelope.from_bytes(m.value).payload["surname"] for m in records] == surnames
    assert len({m.partition for m in records}) == 1
    headers = dict(records[0].headers)
    assert headers["event_type"] == b"StudentAdmitted"
    assert headers["schema_version"] == b"1"


async def test_events_of_one_transaction_keep_their_order(
    infra: Endpoints, mongo: AsyncMongoClient[dict[str, Any]], producer: AIOKafkaProducer
) -> None:
    db_name = f"t_{uuid.uuid4().hex[:12]}"
    await ensure_indexes(mongo[db_name], plumbing_indexes())
    uow = UnitOfWork(mongo, db_name, "identity")
    number = student_no()
    surnames = [f"Surname{i:02d}" for i in range(20)]

    async def work(tx: Transaction) -> None:
        for surname in surnames:
            tx.publish(admitted(number, surname), subject=number)

    await uow.run(work)
    relay = OutboxRelay(mongo[db_name], producer, service="identity")
    assert await relay.hold_lease()
    assert await relay.relay_once() == 20
    records = await read_topic(infra, "identity.events", lambda m: m.key == number.encode())
    assert [Envelope.from_bytes(m.value).payload["surname"] for m in records] == surnames


async def test_rolled_back_transaction_leaves_no_event(
    infra: Endpoints, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    db_name = f"t_{uuid.uuid4().hex[:12]}"
    uow = UnitOfWork(mongo, db_name, "identity")
    number = student_no()

    async def work(tx: Transaction) -> None:
        await tx.db.things.insert_one({"n": number}, session=tx.session)
        tx.publish(admitted(number), subject=number)
        raise RuntimeError("rule refused the change")

    with pytest.raises(RuntimeError):
        await uow.run(work)
    assert await mongo[db_name][OUTBOX].count_documents({}) == 0
    assert await mongo[db_name].things.count_documents({}) == 0


async def test_relay_wakes_for_its_own_commits_and_by_change_stream_for_other_replicas(
    infra: Endpoints, mongo: AsyncMongoClient[dict[str, Any]], producer: AIOKafkaProducer
) -> None:
    """With no sweep to fall back on (an hour apart), a row is published only if the
    relay is woken: directly by a commit in its own process, and through the change
    stream for a row another replica committed."""
    db_name = f"t_{uuid.uuid4().hex[:12]}"
    await ensure_indexes(mongo[db_name], plumbing_indexes())
    relay = OutboxRelay(mongo[db_name], producer, service="identity", sweep_seconds=3600)
    here = UnitOfWork(mongo, db_name, "identity")
    here.on_outbox = relay.wake
    elsewhere = UnitOfWork(mongo, db_name, "identity")  # another replica: no wake-up here
    mine, theirs = student_no(), student_no()

    def publishing(number: str) -> Any:
        async def work(tx: Transaction) -> None:
            tx.publish(admitted(number), subject=number)

        return work

    running = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.5)  # the first pass found nothing and sleeps for an hour
        await here.run(publishing(mine))
        assert await read_topic(infra, "identity.events", lambda m: m.key == mine.encode())
        watching = asyncio.create_task(relay.watch())
        try:
            await asyncio.sleep(1.0)  # the change stream is open
            await elsewhere.run(publishing(theirs))
            found = await read_topic(infra, "identity.events", lambda m: m.key == theirs.encode())
            assert found
        finally:
            watching.cancel()
    finally:
        await relay.stop()
        await running
    assert await mongo[db_name][OUTBOX].count_documents({"status": "pending"}) == 0


async def test_a_fresh_lease_is_renewed_only_after_a_third_of_its_life(
    infra: Endpoints, mongo: AsyncMongoClient[dict[str, Any]], producer: AIOKafkaProducer
) -> None:
    db = mongo[f"t_{uuid.uuid4().hex[:12]}"]
    relay = OutboxRelay(db, producer, service="identity", lease_seconds=0.9)
    assert await relay.hold_lease()
    first = await db.leases.find_one({"_id": "outbox-relay"})
    assert await relay.hold_lease()  # straight after: no write
    assert await db.leases.find_one({"_id": "outbox-relay"}) == first
    assert not await OutboxRelay(db, producer, service="identity").hold_lease()
    await asyncio.sleep(0.4)  # past a third of 0.9 s: renewed
    assert await relay.hold_lease()
    renewed = await db.leases.find_one({"_id": "outbox-relay"})
    assert first is not None
    assert renewed is not None
    assert renewed["expires_at"] > first["expires_at"]
    assert renewed["owner"] == first["owner"]


async def test_second_relay_takes_over_rows_the_first_never_published(
    infra: Endpoints, mongo: AsyncMongoClient[dict[str, Any]], producer: AIOKafkaProducer
) -> None:
    """A process that committed and died before relaying: a later relay delivers."""
    db_name = f"t_{uuid.uuid4().hex[:12]}"
    await ensure_indexes(mongo[db_name], plumbing_indexes())
    uow = UnitOfWork(mongo, db_name, "identity")
    number = student_no()

    async def work(tx: Transaction) -> None:
        tx.publish(admitted(number), subject=number)

    await uow.run(work)
    dead = OutboxRelay(mongo[db_name], producer, service="identity", lease_seconds=0.2)
    assert await dead.hold_lease()  # it held the lease when it died
    successor = OutboxRelay(mongo[db_name], producer, service="identity")
    assert not await successor.hold_lease()
    await asyncio.sleep(0.3)  # the dead relay's lease runs out
    assert await successor.hold_lease()
    task = asyncio.create_task(successor.run())
    try:
        records = await read_topic(infra, "identity.events", lambda m: m.key == number.encode())
    finally:
        await successor.stop()
        await task
    assert len(records) == 1


class Probe:
    """A consuming service for tests: counts effects per student in its database."""

    def __init__(
        self,
        infra: Endpoints,
        fail_for: set[str],
        signing_keys: Any = None,
        hold_for: set[str] | None = None,
    ) -> None:
        self.fail_for = fail_for
        self.hold_for = hold_for or set()  # handled once `release` is set
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        self.group = f"probe-{uuid.uuid4().hex[:8]}"
        self.settings = ServiceSettings(
            service_name="card",  # any consuming service: its DLQ is card.events.dlq
            environment="test",
            kafka_bootstrap_servers=infra.kafka_bootstrap,
            kafka_group_id=self.group,
            mongodb_uri=infra.mongodb_uri,  # type: ignore[arg-type]
            mongodb_database=f"t_{uuid.uuid4().hex[:12]}",
            consumer_retry_backoff_seconds=0.05,
        )
        subs = Subscriptions("card")
        subs.add(StudentAdmitted, self.on_student_admitted)
        self.runtime = ServiceRuntime(self.settings, subscriptions=subs, signing_keys=signing_keys)

    async def on_student_admitted(
        self, tx: Transaction, env: Envelope, event: StudentAdmitted
    ) -> None:
        if event.student_no in self.fail_for:
            raise ValueError(f"cannot handle {event.student_no}")
        if event.student_no in self.hold_for:
            self.holding.set()
            await self.release.wait()
        await tx.db.effects.update_one(
            {"_id": event.student_no}, {"$inc": {"count": 1}}, upsert=True, session=tx.session
        )

    async def effects(self, number: str) -> int:
        doc = await self.runtime.db.effects.find_one({"_id": number})
        return int(doc["count"]) if doc else 0

    async def wait_for_effect(self, number: str, timeout: float = 30) -> int:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if (count := await self.effects(number)) > 0:
                return count
            await asyncio.sleep(0.2)
        return 0


@pytest.fixture
async def probe_factory(infra: Endpoints) -> AsyncIterator[Any]:
    started: list[Probe] = []

    async def start(
        fail_for: set[str] | None = None,
        signing_keys: Any = None,
        hold_for: set[str] | None = None,
    ) -> Probe:
        probe = Probe(infra, fail_for or set(), signing_keys, hold_for)
        await probe.runtime.start()
        started.append(probe)
        return probe

    yield start
    for probe in started:
        await probe.runtime.stop()


async def publish(producer: AIOKafkaProducer, env: Envelope) -> None:
    headers = [(k, v.encode()) for k, v in env.headers().items()]
    await producer.send_and_wait(env.topic, env.to_bytes(), key=env.key, headers=headers)


async def test_same_event_delivered_three_times_has_one_effect(
    infra: Endpoints, producer: AIOKafkaProducer, probe_factory: Any
) -> None:
    probe = await probe_factory()
    number, marker = student_no(), student_no()
    env = Envelope.wrap(admitted(number), subject=number, correlation_id="three-times")
    for _ in range(3):
        await publish(producer, env)
    # A later event on the same partition shows all three copies were consumed.
    await publish(producer, Envelope.wrap(admitted(marker), subject=number, correlation_id="m"))
    assert await probe.wait_for_effect(marker) == 1
    assert await probe.effects(number) == 1
    assert await probe.runtime.uow.is_processed(env.event_id)


async def test_consumption_is_measured_by_batch_lane_wait_and_lag(
    infra: Endpoints, producer: AIOKafkaProducer, probe_factory: Any
) -> None:
    probe = await probe_factory()
    labels = {"service": "card", "topic": "identity.events"}

    def sample(name: str, **extra: str) -> float:
        return REGISTRY.get_sample_value(name, {**labels, **extra}) or 0.0

    batches, records = sample("consumer_batch_records_count"), sample("consumer_batch_records_sum")
    handling = sample("consumer_batch_seconds_count")
    number = student_no()
    numbers = [student_no() for _ in range(5)]
    for other in numbers:  # one key: one partition, in order
        await publish(producer, Envelope.wrap(admitted(other), subject=number, correlation_id="m"))
    assert await probe.wait_for_effect(numbers[-1]) == 1

    # A new group reads the topic from its start: other tests' records count too.
    handled = sample("consumer_batch_records_sum") - records
    assert handled >= len(numbers)
    assert 1 <= sample("consumer_batch_records_count") - batches <= handled
    assert sample("consumer_batch_seconds_count") - handling >= 1
    assert REGISTRY.get_sample_value("consumer_lane_wait_seconds_total", labels) is not None
    lags = [
        REGISTRY.get_sample_value("consumer_lag_records", {**labels, "partition": str(p)})
        for p in range(8)
    ]
    assert any(lag is not None for lag in lags)
    assert all(lag >= 0 for lag in lags if lag is not None)


async def test_a_partition_held_up_does_not_hold_up_the_others(
    infra: Endpoints, producer: AIOKafkaProducer, probe_factory: Any
) -> None:
    """A record whose handling waits fills its partition's lane; the consumer goes on
    reading the other partitions and handles another partition's record meanwhile,
    and once the held record is done every record behind it is handled exactly
    once."""
    held = student_no()
    probe = await probe_factory(hold_for={held})
    topic = "identity.events"
    slow, other = sorted(await producer.partitions_for(topic))[:2]
    behind = [student_no() for _ in range(3 * probe.settings.consumer_batch_size + 40)]

    async def send(number: str, partition: int) -> None:
        env = Envelope.wrap(admitted(number), subject=number, correlation_id="held")
        headers = [(k, v.encode()) for k, v in env.headers().items()]
        await producer.send_and_wait(
            topic, env.to_bytes(), key=env.key, headers=headers, partition=partition
        )

    for number in [held, *behind]:
        await send(number, slow)
    await asyncio.wait_for(probe.holding.wait(), 30)
    await asyncio.sleep(1.0)  # the consumer has read what is behind the held record
    free = student_no()
    await send(free, other)
    try:
        assert await probe.wait_for_effect(free, timeout=15) == 1
        assert all([await probe.effects(number) == 0 for number in behind])
    finally:
        probe.release.set()
    assert await probe.wait_for_effect(behind[-1]) == 1
    assert [await probe.effects(number) for number in [held, *behind]] == [1] * (len(behind) + 1)


async def test_poison_and_failing_messages_are_dead_lettered_and_consumption_goes_on(
    infra: Endpoints, producer: AIOKafkaProducer, probe_factory: Any
) -> None:
    bad_student, after = student_no(), student_no()
    probe = await probe_factory(fail_for={bad_student})
    poison_key = f"poison-{uuid.uuid4().hex}".encode()
    await producer.send_and_wait(
        "identity.events",
        b"{not json",
        key=poison_key,
        headers=[("event_type", b"StudentAdmitted")],
    )
    failing = Envelope.wrap(admitted(bad_student), subject=bad_student, correlation_id="f")
    await publish(producer, failing)
    await publish(producer, Envelope.wrap(admitted(after), subject=after, correlation_id="a"))

    assert await probe.wait_for_effect(after) == 1

    dlq = dead_letter_topic_for("card")
    letters = await read_topic(
        infra, dlq, lambda m: m.key in (poison_key, bad_student.encode()), timeout=10
    )
    by_key = {m.key: dict(m.headers) for m in letters}
    assert by_key[poison_key]["dlq_error"].startswith(b"undecodable")
    assert (
        by_key[bad_student.encode()]["dlq_error"]
        == f"ValueError: cannot handle {bad_student}".encode()
    )
    assert by_key[bad_student.encode()]["dlq_attempts"] == b"3"
    assert by_key[bad_student.encode()]["dlq_source_topic"] == b"identity.events"

    # After a fix, replaying the dead letters applies the failed event once.
    probe.fail_for.clear()
    listed = await read_dead_letters(infra.kafka_bootstrap, "card")
    mine = {d.id for d in listed if d.record.key == bad_student.encode()}
    assert len(mine) == 1
    counts = await replay_dead_letters(probe.runtime.consumer, infra.kafka_bootstrap, only=mine)
    assert counts == {"handled": 1}
    assert await probe.effects(bad_student) == 1
    again = await replay_dead_letters(probe.runtime.consumer, infra.kafka_bootstrap, only=mine)
    assert again == {"already_replayed": 1}
    assert await probe.effects(bad_student) == 1


async def test_administrators_list_and_replay_dead_letters_over_http(
    infra: Endpoints, producer: AIOKafkaProducer, probe_factory: Any
) -> None:
    key = generate_private_key()

    async def jwks() -> dict[str, Any]:
        return {"keys": [public_jwk(key, "test")]}

    bad_student = student_no()
    probe = await probe_factory(fail_for={bad_student}, signing_keys=jwks)
    app = create_http_app(probe.runtime, routers=[], title="Card", description="probe")
    admin = sign_token(key, "test", subject="admin1", role=Role.ADMIN, ttl_seconds=60)
    student = sign_token(
        key, "test", subject=bad_student, role=Role.STUDENT, ttl_seconds=60, student_no=bad_student
    )
    await publish(
        producer, Envelope.wrap(admitted(bad_student), subject=bad_student, correlation_id="x")
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://card"
    ) as client:
        mine: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not mine and loop.time() < deadline:
            listed = await client.get("/api/card/admin/dead-letters", headers=bearer(admin))
            assert listed.status_code == 200
            mine = [
                d
                for d in listed.json()
                if d["event_type"] == "StudentAdmitted"
                and d["error"] == f"ValueError: cannot handle {bad_student}"
            ]
            await asyncio.sleep(0.3)
        assert len(mine) == 1
        assert (await client.get("/api/card/admin/dead-letters")).status_code == 401
        forbidden = await client.get("/api/card/admin/dead-letters", headers=bearer(student))
        assert forbidden.status_code == 403
        probe.fail_for.clear()
        replayed = await client.post(
            "/api/card/admin/dead-letters/replay",
            json={"ids": [mine[0]["id"]]},
            headers=bearer(admin),
        )
    assert replayed.json() == {"outcomes": {"handled": 1}}
    assert await probe.effects(bad_student) == 1


@pytest.fixture
def thread_hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What was sent to the worker-thread pool (FastAPI and FastStream both go
    through anyio's) while the test ran."""
    hops: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__qualname__", repr(func)))
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    return hops


async def test_records_and_requests_are_handled_without_a_worker_thread(
    infra: Endpoints, producer: AIOKafkaProducer, probe_factory: Any, thread_hops: list[str]
) -> None:
    key = generate_private_key()

    async def jwks() -> dict[str, Any]:
        return {"keys": [public_jwk(key, "test")]}

    probe = await probe_factory(signing_keys=jwks)
    router = APIRouter()

    @router.get("/effects/{number}")
    async def effects(
        number: str,
        caller: Annotated[Principal, Depends(current_principal)],
        uow: Annotated[UnitOfWork, Depends(uow_of)],
        db: Annotated[Any, Depends(db_of)],
    ) -> dict[str, Any]:
        assert uow.db == db
        found = await db.effects.find_one({"_id": number})
        return {"caller": caller.subject, "effects": found["count"] if found else 0}

    app = create_http_app(probe.runtime, routers=[router], title="Card", description="probe")
    number = student_no()
    await publish(producer, Envelope.wrap(admitted(number), subject=number, correlation_id="t"))
    assert await probe.wait_for_effect(number) == 1
    admin = sign_token(key, "test", subject="admin1", role=Role.ADMIN, ttl_seconds=60)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://card"
    ) as client:
        answer = await client.get(f"/api/card/effects/{number}", headers=bearer(admin))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"caller": "admin1", "effects": 1}
        assert (await client.get("/api/card/admin/dead-letters", headers=bearer(admin))).is_success
    assert thread_hops == []
