"""Units of work on a real server: what they report on /metrics (the outcome, and
how many times the transaction ran: a conflict makes the driver run it again),
the hooks that run once they have committed, and several consumed events
handled in one transaction."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from opr_shared.events.catalogue import IntakeScheduled
from opr_shared.events.envelope import Envelope
from opr_shared.localinfra import Endpoints
from opr_shared.store.mongo import AlreadyProcessed, Transaction, UnitOfWork, update_by_id
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

pytestmark = pytest.mark.integration

Doc = dict[str, Any]
WRITERS = 8


@pytest.fixture
async def uow(infra: Endpoints) -> AsyncIterator[UnitOfWork]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(
        infra.mongodb_uri, tz_aware=True, uuidRepresentation="standard"
    )
    database = f"t_{uuid.uuid4().hex[:12]}"
    # Collections exist before the transactions (created inside one, they conflict too).
    await client[database].create_collection("counters")
    await client[database].create_collection("log")
    # A label of its own, so the counters start at nothing.
    yield UnitOfWork(client, database, f"test-{uuid.uuid4().hex[:8]}")
    await client.drop_database(database)
    await client.close()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_every_series_is_there_at_zero_before_the_first_transaction(uow: UnitOfWork) -> None:
    service = uow.producer
    for outcome in ("committed", "already_processed", "failed"):
        labels = {"service": service, "outcome": outcome}
        assert REGISTRY.get_sample_value("units_of_work_total", labels) == 0.0
    assert REGISTRY.get_sample_value("transaction_runs_total", {"service": service}) == 0.0
    assert REGISTRY.get_sample_value("unit_of_work_seconds_count", {"service": service}) == 0.0


async def test_runs_again_after_conflicts_are_counted(uow: UnitOfWork) -> None:
    runs: list[str] = []

    async def bump(name: str) -> None:
        async def work(tx: Transaction) -> None:
            runs.append(name)
            await update_by_id(
                tx.db["counters"], "serial", {"$inc": {"n": 1}}, upsert=True, session=tx.session
            )
            await asyncio.sleep(0.05)  # still open while the others reach the counter
            await tx.db["log"].insert_one({"writer": name}, session=tx.session)

        await uow.run(work)

    await asyncio.gather(*(bump(f"w{i}") for i in range(WRITERS)))

    service = uow.producer
    assert len(runs) > WRITERS  # the writers did collide
    assert sample("transaction_runs_total", service=service) == len(runs)
    assert sample("units_of_work_total", service=service, outcome="committed") == WRITERS
    assert sample("unit_of_work_seconds_count", service=service) == WRITERS
    assert (await uow.db["counters"].find_one({"_id": "serial"}) or {})["n"] == WRITERS


async def test_failed_and_already_processed_units_are_told_apart(uow: UnitOfWork) -> None:
    async def note(tx: Transaction) -> None:
        await tx.db["log"].insert_one({"writer": "once"}, session=tx.session)

    async def refuse(tx: Transaction) -> None:
        raise ValueError("refused")

    event_id = uuid.uuid4()
    await uow.run(note, handled_event_id=event_id)
    with pytest.raises(AlreadyProcessed):
        await uow.run(note, handled_event_id=event_id)
    with pytest.raises(ValueError, match="refused"):
        await uow.run(refuse)

    service = uow.producer
    assert sample("units_of_work_total", service=service, outcome="committed") == 1
    assert sample("units_of_work_total", service=service, outcome="already_processed") == 1
    assert sample("units_of_work_total", service=service, outcome="failed") == 1
    assert sample("transaction_runs_total", service=service) == 3
    assert await uow.db["log"].count_documents({}) == 1


async def test_after_commit_hooks_run_once_for_the_committed_run_only(
    uow: UnitOfWork, caplog: pytest.LogCaptureFixture
) -> None:
    called: list[str] = []
    runs: dict[str, int] = {}

    async def bump(name: str) -> None:
        async def work(tx: Transaction) -> None:
            runs[name] = runs.get(name, 0) + 1
            attempt = runs[name]
            tx.after_commit(lambda: called.append(f"{name}#{attempt}"))
            await update_by_id(
                tx.db["counters"], "serial", {"$inc": {"n": 1}}, upsert=True, session=tx.session
            )
            await asyncio.sleep(0.05)

        await uow.run(work)

    await asyncio.gather(*(bump(f"w{i}") for i in range(WRITERS)))
    assert sum(runs.values()) > WRITERS  # some runs were rolled back and run again
    # One call per writer, from the run that committed (its last).
    assert sorted(called) == sorted(f"{name}#{n}" for name, n in runs.items())

    async def refuse(tx: Transaction) -> None:
        tx.after_commit(lambda: called.append("refused"))
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await uow.run(refuse)
    assert "refused" not in called

    def broken() -> None:
        raise RuntimeError("hook broke")

    async def note(tx: Transaction) -> str:
        tx.after_commit(broken)
        tx.after_commit(lambda: called.append("after the broken one"))
        await tx.db["log"].insert_one({"writer": "hooked"}, session=tx.session)
        return "kept"

    assert await uow.run(note) == "kept"  # a failing hook does not undo the commit
    assert called[-1] == "after the broken one"
    assert await uow.db["log"].count_documents({"writer": "hooked"}) == 1
    assert "an after-commit hook failed" in caplog.text


async def test_several_consumed_events_commit_in_one_transaction(uow: UnitOfWork) -> None:
    registration = UnitOfWork(uow.client, uow.db.name, "registration")
    events = [uuid.uuid4() for _ in range(3)]
    called: list[int] = []

    def step(n: int) -> Any:
        async def work(tx: Transaction) -> None:
            # Each step sees what the steps before it wrote (one transaction).
            seen = await tx.db["log"].count_documents({}, session=tx.session)
            await tx.db["log"].insert_one({"step": n, "saw": seen}, session=tx.session)
            tx.publish(
                IntakeScheduled(
                    intake_year=2026 + n,
                    registration_deadline=datetime(2026, 8, 14, 9, tzinfo=UTC),
                    term_start=date(2026, 9, 1),
                    age_cutoff=date(2026, 9, 1),
                ),
                subject=f"intake:{2026 + n}",
            )
            tx.after_commit(lambda: called.append(n))

        return work

    await registration.run_events([(event_id, step(n)) for n, event_id in enumerate(events)])

    log_rows = await uow.db["log"].find({}, {"_id": 0}).sort("step", 1).to_list()
    assert log_rows == [{"step": 0, "saw": 0}, {"step": 1, "saw": 1}, {"step": 2, "saw": 2}]
    marks = await uow.db["processed_events"].find({}).to_list()
    assert sorted(m["_id"] for m in marks) == sorted(str(e) for e in events)
    outbox = await uow.db["outbox"].find({}).sort("seq", 1).to_list()
    # One row per published event, in order, each caused by its own consumed event.
    causes = [Envelope.from_bytes(bytes(row["value"])).causation_id for row in outbox]
    assert causes == [str(e) for e in events]
    assert called == [0, 1, 2]

    # One of them handled before: nothing of the batch is written.
    again = [uuid.uuid4(), events[1]]
    with pytest.raises(AlreadyProcessed):
        await registration.run_events([(event_id, step(9)) for event_id in again])
    assert await uow.db["log"].count_documents({}) == 3
    assert await uow.db["processed_events"].count_documents({"_id": str(again[0])}) == 0

    # A step that fails rolls the others back too.
    async def refuse(tx: Transaction) -> None:
        raise ValueError("refused")

    fresh = [uuid.uuid4(), uuid.uuid4()]
    with pytest.raises(ValueError, match="refused"):
        await registration.run_events([(fresh[0], step(7)), (fresh[1], refuse)])
    assert await uow.db["log"].count_documents({}) == 3
    assert await uow.db["outbox"].count_documents({}) == 3
    assert await uow.db["processed_events"].count_documents({}) == 3


def counter_step(runs: list[str], name: str, doc_id: str) -> Any:
    """Work that notes its name in ``runs`` and adds one to counter ``doc_id``."""

    async def work(tx: Transaction) -> None:
        runs.append(name)
        await tx.db["counters"].update_one(
            {"_id": doc_id}, {"$inc": {"n": 1}}, upsert=True, session=tx.session
        )

    return work


async def test_a_batch_meeting_a_conflict_is_not_run_again_whole(uow: UnitOfWork) -> None:
    await uow.db["counters"].insert_one({"_id": "shared", "n": 0})
    steps_run: list[str] = []

    def step(name: str, doc_id: str) -> Any:
        return counter_step(steps_run, name, doc_id)

    # Another transaction has changed the shared document and not committed yet.
    async with uow.client.start_session() as other:
        await other.start_transaction()
        await uow.db["counters"].update_one({"_id": "shared"}, {"$inc": {"n": 10}}, session=other)
        with pytest.raises(PyMongoError) as raised:
            await uow.run_events(
                [(uuid.uuid4(), step("first", "own")), (uuid.uuid4(), step("second", "shared"))]
            )
        await other.commit_transaction()

    assert raised.value.has_error_label("TransientTransactionError")  # a write conflict
    assert steps_run == ["first", "second"]  # one attempt: left to one-at-a-time handling
    assert sample("transaction_runs_total", service=uow.producer) == 1
    assert sample("units_of_work_total", service=uow.producer, outcome="failed") == 1
    assert await uow.db["counters"].find_one({"_id": "own"}) is None  # rolled back
    assert (await uow.db["counters"].find_one({"_id": "shared"}) or {})["n"] == 10
    assert await uow.db["processed_events"].count_documents({}) == 0


async def test_work_run_together_commits_once_each_event_caused_by_its_own_cause(
    uow: UnitOfWork,
) -> None:
    registration = UnitOfWork(uow.client, uow.db.name, "registration")
    causes = [f"cause-{n}" for n in range(3)]

    def step(n: int) -> Any:
        async def work(tx: Transaction) -> int:
            await tx.db["log"].insert_one({"step": n}, session=tx.session)
            tx.publish(
                IntakeScheduled(
                    intake_year=2040 + n,
                    registration_deadline=datetime(2040, 8, 14, 9, tzinfo=UTC),
                    term_start=date(2040, 9, 1),
                    age_cutoff=date(2040, 9, 1),
                ),
                subject=f"intake:{2040 + n}",
            )
            return n * 10

        return work

    results = await registration.run_together([(step(n), causes[n]) for n in range(3)])
    assert results == [0, 10, 20]
    assert sample("units_of_work_total", service="registration", outcome="committed") >= 1
    outbox = await uow.db["outbox"].find({}).sort("seq", 1).to_list()
    assert [Envelope.from_bytes(bytes(r["value"])).causation_id for r in outbox] == causes
    assert await uow.db["processed_events"].count_documents({}) == 0  # no consumed event

    # One that fails leaves nothing of the others.
    async def refuse(tx: Transaction) -> int:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await registration.run_together([(step(5), "cause-5"), (refuse, "cause-6")])
    assert await uow.db["log"].count_documents({}) == 3
    assert await uow.db["outbox"].count_documents({}) == 3


async def test_work_run_together_runs_again_whole_after_a_conflict(uow: UnitOfWork) -> None:
    await uow.db["counters"].insert_one({"_id": "shared", "n": 0})
    runs: list[str] = []

    def step(name: str, doc_id: str) -> Any:
        return counter_step(runs, name, doc_id)

    async with uow.client.start_session() as other:
        await other.start_transaction()
        await uow.db["counters"].update_one({"_id": "shared"}, {"$inc": {"n": 10}}, session=other)

        async def commit_soon() -> None:
            await asyncio.sleep(0.3)
            await other.commit_transaction()

        committing = asyncio.create_task(commit_soon())
        await uow.run_together([(step("first", "own"), None), (step("second", "shared"), None)])
        await committing
    # Met the other transaction's change at least once, then ran again whole.
    assert runs[:2] == ["first", "second"]
    assert len(runs) >= 4
    assert len(runs) % 2 == 0
    assert (await uow.db["counters"].find_one({"_id": "own"}) or {})["n"] == 1
    assert (await uow.db["counters"].find_one({"_id": "shared"}) or {})["n"] == 11
