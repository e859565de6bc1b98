"""A service's cap on its database connections (MONGODB_MAX_POOL_SIZE): the client
opens no more than that, and transactions beyond it wait their turn and commit."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from opr_shared.localinfra import Endpoints
from opr_shared.runtime import ServiceRuntime
from opr_shared.settings import ServiceSettings
from opr_shared.store.mongo import Transaction, UnitOfWork
from pymongo import AsyncMongoClient, monitoring

pytestmark = pytest.mark.integration

TRANSACTIONS = 24


class Connections(monitoring.ConnectionPoolListener):
    """Counts connections opened and the most checked out at once."""

    def __init__(self) -> None:
        self.created = 0
        self.out = 0
        self.most_out = 0

    def connection_created(self, event: monitoring.ConnectionCreatedEvent) -> None:
        self.created += 1

    def connection_checked_out(self, event: monitoring.ConnectionCheckedOutEvent) -> None:
        self.out += 1
        self.most_out = max(self.most_out, self.out)

    def connection_checked_in(self, event: monitoring.ConnectionCheckedInEvent) -> None:
        self.out -= 1

    def pool_created(self, event: Any) -> None: ...
    def pool_ready(self, event: Any) -> None: ...
    def pool_cleared(self, event: Any) -> None: ...
    def pool_closed(self, event: Any) -> None: ...
    def connection_ready(self, event: Any) -> None: ...
    def connection_closed(self, event: Any) -> None: ...
    def connection_check_out_started(self, event: Any) -> None: ...
    def connection_check_out_failed(self, event: Any) -> None: ...


async def _many_transactions(uri: str, pool: int) -> tuple[Connections, int]:
    """TRANSACTIONS units of work at once, each reading and writing, on a client
    capped at ``pool`` connections as a service's is; how many connections they
    took and how many documents they left."""
    listener = Connections()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        uri, maxPoolSize=pool, event_listeners=[listener], uuidRepresentation="standard"
    )
    database = f"t_{uuid.uuid4().hex[:12]}"
    try:
        await client[database].create_collection("items")
        uow = UnitOfWork(client, database, "pool-test")

        async def one(n: int) -> None:
            async def work(tx: Transaction) -> None:
                items = tx.db["items"]
                await items.find_one({"_id": n}, session=tx.session)
                await items.insert_one({"_id": n, "at": n}, session=tx.session)
                await asyncio.sleep(0.01)  # the transaction stays open across awaits
                await items.update_one({"_id": n}, {"$set": {"done": True}}, session=tx.session)

            await uow.run(work)

        await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(TRANSACTIONS))), 60)
        done = await client[database]["items"].count_documents({"done": True})
    finally:
        await client.drop_database(database)
        await client.close()
    return listener, done


async def test_transactions_beyond_the_cap_wait_their_turn_and_all_commit(
    infra: Endpoints,
) -> None:
    capped, done = await _many_transactions(infra.mongodb_uri, 2)
    assert done == TRANSACTIONS
    assert capped.most_out <= 2
    assert capped.created <= 2
    # Without the cap the same work takes more connections at once: the cap is what held.
    uncapped, done = await _many_transactions(infra.mongodb_uri, 100)
    assert done == TRANSACTIONS
    assert uncapped.most_out > 2


def test_a_service_takes_its_cap_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGODB_MAX_POOL_SIZE", "6")
    runtime = ServiceRuntime(ServiceSettings(service_name="card", environment="test"))
    assert runtime.mongo.options.pool_options.max_pool_size == 6
    monkeypatch.delenv("MONGODB_MAX_POOL_SIZE")
    runtime = ServiceRuntime(ServiceSettings(service_name="card", environment="test"))
    assert runtime.mongo.options.pool_options.max_pool_size == 100  # the driver's own
    monkeypatch.setenv("MONGODB_MAX_POOL_SIZE", "0")
    with pytest.raises(ValueError, match="mongodb_max_pool_size"):
        ServiceSettings(service_name="card", environment="test")
