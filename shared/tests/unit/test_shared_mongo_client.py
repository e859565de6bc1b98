"""The services' MongoDB client does not reuse a connection the server has dropped
for being idle (a real server, in this process, that drops idle connections fast)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opr_shared.store.mongo import make_client
from pymongo.errors import AutoReconnect
from secantus import SecantusDBServer

SERVER_IDLE_TIMEOUT = 1.0


@pytest.fixture
def uri() -> Iterator[str]:
    server = SecantusDBServer(
        port=0, storage_path=":memory:", client_idle_timeout_s=SERVER_IDLE_TIMEOUT
    )
    server.start()
    try:
        # As on the local stack: writes are not retried.
        yield f"mongodb://127.0.0.1:{server.port}/?directConnection=true&retryWrites=false"
    finally:
        server.stop()


async def write_after_a_pause(uri: str, max_idle_seconds: float) -> None:
    client = make_client(uri, "idle-test", max_idle_seconds=max_idle_seconds)
    try:
        await client["t"]["rows"].insert_one({"n": 1})
        await asyncio.sleep(SERVER_IDLE_TIMEOUT * 2.5)  # the server drops the connection
        await client["t"]["rows"].insert_one({"n": 2})
    finally:
        await client.close()


async def test_a_connection_idle_past_its_limit_is_replaced_before_use(uri: str) -> None:
    await write_after_a_pause(uri, max_idle_seconds=SERVER_IDLE_TIMEOUT / 2)


async def test_without_the_limit_the_dropped_connection_fails_the_write(uri: str) -> None:
    # What the limit prevents: the pooled connection is reused and the write fails.
    with pytest.raises(AutoReconnect):
        await write_after_a_pause(uri, max_idle_seconds=3600)
