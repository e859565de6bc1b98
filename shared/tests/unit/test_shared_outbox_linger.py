"""A relay with a linger publishes the rows of commits close together in one pass."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from opr_shared.settings import ServiceSettings
from opr_shared.store.outbox import OutboxRelay


class Passes(OutboxRelay):
    """A relay that holds its lease and counts its passes (each finds ``rows``)."""

    def __init__(self, linger: float, rows: int = 0) -> None:
        super().__init__(db=None, sender=None, service="t", sweep_seconds=60, linger_seconds=linger)  # type: ignore[arg-type]
        self.passes: list[float] = []
        self.rows = rows

    async def hold_lease(self) -> bool:
        return True

    async def relay_once(self) -> int:
        self.passes.append(time.monotonic())
        await asyncio.sleep(0)  # as the database's answer would
        return self.rows


async def commits(relay: OutboxRelay, count: int, apart: float) -> None:
    for _ in range(count):
        relay.wake()
        await asyncio.sleep(apart)
    await asyncio.sleep(0.5)  # longer than the linger: its pass is done


async def run(relay: Passes, during: Any) -> None:
    running = asyncio.create_task(relay.run())
    await asyncio.sleep(0.05)  # the first pass: nothing waiting
    await during
    await relay.stop()
    await asyncio.wait_for(running, 2)


def test_without_a_linger_every_commit_is_a_pass() -> None:
    relay = Passes(linger=0)
    asyncio.run(run(relay, commits(relay, 5, 0.03)))
    assert len(relay.passes) == 1 + 5


def test_with_a_linger_commits_close_together_are_one_pass() -> None:
    relay = Passes(linger=0.3)
    asyncio.run(run(relay, commits(relay, 5, 0.03)))
    assert len(relay.passes) == 1 + 1
    assert relay.passes[1] - relay.passes[0] >= 0.3  # after the linger


def test_a_full_batch_is_followed_by_the_next_at_once() -> None:
    relay = Passes(linger=5, rows=200)  # every pass finds a full batch

    async def briefly() -> None:
        await asyncio.sleep(0.05)

    asyncio.run(run(relay, briefly()))
    assert len(relay.passes) > 10


def test_stopping_does_not_wait_out_the_linger() -> None:
    relay = Passes(linger=30)

    async def one_commit() -> None:
        relay.wake()
        await asyncio.sleep(0.05)

    began = time.monotonic()
    asyncio.run(run(relay, one_commit()))
    assert time.monotonic() - began < 2


def test_the_services_read_the_linger_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OUTBOX_LINGER_SECONDS", "0.2")
    assert ServiceSettings(service_name="alpha").outbox_linger_seconds == 0.2
