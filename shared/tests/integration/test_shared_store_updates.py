"""update_by_id and claim_many (the store's findAndModify replacements) on a real server."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opr_shared.localinfra import Endpoints
from opr_shared.store.mongo import claim_many, update_by_id
from pymongo import ASCENDING, AsyncMongoClient, IndexModel, monitoring
from pymongo.asynchronous.collection import AsyncCollection

pytestmark = pytest.mark.integration

Doc = dict[str, Any]


@pytest.fixture
async def mongo(infra: Endpoints) -> AsyncIterator[AsyncMongoClient[Doc]]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    yield client
    await client.close()


@pytest.fixture
async def jobs(mongo: AsyncMongoClient[Doc]) -> AsyncCollection[Doc]:
    collection = mongo[f"t_{uuid.uuid4().hex[:12]}"]["jobs"]
    await collection.create_indexes([IndexModel([("status", ASCENDING), ("due", ASCENDING)])])
    return collection


async def test_update_by_id_answers_the_document_as_updated(jobs: AsyncCollection[Doc]) -> None:
    await jobs.insert_one({"_id": "a", "n": 1, "other": "x"})

    doc = await update_by_id(jobs, "a", {"$inc": {"n": 1}}, projection={"n": 1})

    assert doc == {"_id": "a", "n": 2}
    assert await jobs.find_one({"_id": "a"}) == {"_id": "a", "n": 2, "other": "x"}


class _Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_update_by_id_is_one_request(infra: Endpoints) -> None:
    commands = _Commands()
    client: AsyncMongoClient[Doc] = AsyncMongoClient(
        infra.mongodb_uri, tz_aware=True, event_listeners=[commands]
    )
    try:
        counters = client[f"t_{uuid.uuid4().hex[:12]}"]["counters"]
        await counters.insert_many([{"_id": f"c{i}", "n": 0} for i in range(20)])
        commands.names.clear()
        doc = await update_by_id(counters, "c3", {"$inc": {"n": 1}}, where={"n": {"$gte": 0}})
        assert doc == {"_id": "c3", "n": 1}
        assert commands.names == ["findAndModify"]
    finally:
        await client.close()


async def test_update_by_id_leaves_a_document_that_fails_the_condition(
    jobs: AsyncCollection[Doc],
) -> None:
    await jobs.insert_one({"_id": "a", "remaining": 0})

    doc = await update_by_id(
        jobs, "a", {"$inc": {"remaining": -1}}, where={"remaining": {"$gt": 0}}
    )

    assert doc is None
    assert await jobs.find_one({"_id": "a"}) == {"_id": "a", "remaining": 0}
    assert await update_by_id(jobs, "missing", {"$set": {"x": 1}}) is None
    assert await jobs.count_documents({}) == 1


async def test_update_by_id_upserts_and_refuses_an_id_in_the_condition(
    jobs: AsyncCollection[Doc],
) -> None:
    first = await update_by_id(jobs, "counter", {"$inc": {"seq": 1}}, upsert=True)
    second = await update_by_id(jobs, "counter", {"$inc": {"seq": 1}}, upsert=True)

    assert first == {"_id": "counter", "seq": 1}
    assert second == {"_id": "counter", "seq": 2}
    with pytest.raises(ValueError, match="doc_id"):
        await update_by_id(jobs, "counter", {"$inc": {"seq": 1}}, where={"_id": "other"})


async def test_update_by_id_inside_a_transaction_reads_its_own_write(
    mongo: AsyncMongoClient[Doc], jobs: AsyncCollection[Doc]
) -> None:
    await jobs.insert_one({"_id": "a", "n": 0})

    async with mongo.start_session() as session, await session.start_transaction():
        inside = await update_by_id(jobs, "a", {"$inc": {"n": 5}}, session=session)
        outside = await jobs.find_one({"_id": "a"})
        await session.abort_transaction()

    assert inside is not None
    assert inside["n"] == 5
    assert outside is not None
    assert outside["n"] == 0  # not visible outside before commit
    assert (await jobs.find_one({"_id": "a"}) or {})["n"] == 0  # and rolled back


async def test_claim_many_takes_the_earliest_matches_in_one_go(
    jobs: AsyncCollection[Doc],
) -> None:
    await jobs.insert_many(
        [
            {"_id": "c", "status": "pending", "due": 3},
            {"_id": "a", "status": "pending", "due": 1},
            {"_id": "done", "status": "sent", "due": 0},
            {"_id": "b", "status": "pending", "due": 2},
            {"_id": "d", "status": "pending", "due": 4},
            {"_id": "future", "status": "pending", "due": 9},
        ]
    )
    query = {"status": "pending", "due": {"$lte": 5}}

    async def claim(name: str) -> list[Doc]:
        return await claim_many(
            jobs,
            query,
            {"$set": {"status": "taken", "claim": name}},
            claimed={"claim": name},
            sort=[("due", ASCENDING)],
            limit=3,
        )

    first, second, third = await claim("one"), await claim("two"), await claim("three")

    assert [d["_id"] for d in first] == ["a", "b", "c"]
    assert all(d["status"] == "taken" and d["claim"] == "one" for d in first)
    assert [d["_id"] for d in second] == ["d"]
    assert third == []
    assert (await jobs.find_one({"_id": "done"}) or {})["status"] == "sent"
    assert (await jobs.find_one({"_id": "future"}) or {})["status"] == "pending"


async def test_concurrent_batch_claimers_never_take_the_same_document(
    jobs: AsyncCollection[Doc],
) -> None:
    """Claimers racing over the same candidates: each document is taken once, all
    of them are taken, and a claimer that lost a race looks again."""
    total = 60
    await jobs.insert_many(
        [{"_id": f"j{i:03}", "status": "pending", "due": i} for i in range(total)]
    )
    taken: Counter[str] = Counter()

    async def claimer(name: str) -> None:
        idle = 0
        while idle < 3:
            claim = uuid.uuid4().hex
            docs = await claim_many(
                jobs,
                {"status": "pending"},
                {"$set": {"status": "taken", "by": name, "claim": claim}},
                claimed={"claim": claim},
                sort=[("due", ASCENDING)],
                limit=4,
            )
            if not docs:
                idle += 1
                continue
            idle = 0
            for doc in docs:
                assert doc["by"] == name
                taken[doc["_id"]] += 1

    await asyncio.gather(*(claimer(f"c{i}") for i in range(6)))

    assert sum(taken.values()) == total
    assert set(taken.values()) == {1}
    assert await jobs.count_documents({"status": "pending"}) == 0


async def test_claim_many_leaves_candidates_failing_the_recheck(
    jobs: AsyncCollection[Doc],
) -> None:
    await jobs.insert_many(
        [
            {"_id": "a", "status": "sending", "due": 1, "committing": True},
            {"_id": "b", "status": "sending", "due": 2, "committing": False},
            {"_id": "c", "status": "sending", "due": 3, "committing": False},
        ]
    )

    async def claim(limit: int) -> list[str]:
        docs = await claim_many(
            jobs,
            {"status": "sending"},
            {"$set": {"status": "taken", "claim": "x"}},
            claimed={"claim": "x"},
            sort=[("due", ASCENDING)],
            limit=limit,
            recheck={"committing": False},
        )
        return [d["_id"] for d in docs]

    assert await claim(1) == []  # the earliest candidate fails the recheck: nothing taken
    assert await claim(2) == ["b"]
    assert await claim(5) == ["c"]
    assert (await jobs.find_one({"_id": "a"}) or {})["status"] == "sending"
