"""When the slot-offer sweep runs: at start, when woken, at once again after a full
batch, otherwise at its interval; and it stops when asked."""

from __future__ import annotations

import asyncio
from typing import Any

from card.offers import BATCH, SlotOfferSweep


class Offers:
    """Stands in for the booking: answers the planned number of offers per pass."""

    def __init__(self, planned: list[int]) -> None:
        self.planned = planned
        self.passes = 0
        self.ran = asyncio.Event()

    async def __call__(self, uow: Any, limit: int) -> int:
        assert limit == BATCH
        self.passes += 1
        self.ran.set()
        return self.planned.pop(0) if self.planned else 0


async def next_pass(offers: Offers, within: float) -> None:
    offers.ran.clear()
    await asyncio.wait_for(offers.ran.wait(), timeout=within)


async def test_a_wake_runs_the_sweep_long_before_its_interval() -> None:
    offers = Offers([])
    sweep = SlotOfferSweep(uow=None, interval_seconds=3600, offer=offers)  # type: ignore[arg-type]
    task = asyncio.create_task(sweep.run())
    await next_pass(offers, within=1)  # the pass at start
    await asyncio.sleep(0.05)
    assert offers.passes == 1  # then it waits
    sweep.wake()
    await next_pass(offers, within=1)
    assert offers.passes == 2
    await sweep.stop()
    await asyncio.wait_for(task, timeout=1)


async def test_a_full_batch_is_followed_at_once_by_another_pass() -> None:
    offers = Offers([BATCH, BATCH, 3])
    sweep = SlotOfferSweep(uow=None, interval_seconds=3600, offer=offers)  # type: ignore[arg-type]
    task = asyncio.create_task(sweep.run())
    for _ in range(50):
        if offers.passes >= 3:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert offers.passes == 3  # two full batches, then a partial one: it waits
    await sweep.stop()
    await asyncio.wait_for(task, timeout=1)


async def test_without_a_wake_the_sweep_runs_at_its_interval() -> None:
    offers = Offers([])
    sweep = SlotOfferSweep(uow=None, interval_seconds=0.1, offer=offers)  # type: ignore[arg-type]
    task = asyncio.create_task(sweep.run())
    await next_pass(offers, within=1)
    await next_pass(offers, within=1)
    assert offers.passes == 2
    await sweep.stop()
    await asyncio.wait_for(task, timeout=1)
