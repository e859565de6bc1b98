"""The slot-offer sweep: books a collection slot for every issued card without one.

Woken by this process's issuing transactions as soon as they commit (``wake``),
and every ``interval_seconds`` besides: cards issued by another replica, or
waiting for the card office to publish (or enlarge) the schedule. One sweep per
process books one card at a time, so the bookings of a burst of issues do not
conflict over the earliest slot's document.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from opr_shared.store.mongo import UnitOfWork

from card.handlers.collection import offer_waiting_slots

log = logging.getLogger(__name__)

BATCH = 50


class SlotOfferSweep:
    def __init__(
        self,
        uow: UnitOfWork,
        interval_seconds: float,
        offer: Callable[[UnitOfWork, int], Awaitable[int]] = offer_waiting_slots,
        woken: asyncio.Event | None = None,
    ) -> None:
        self.uow = uow
        self.interval = interval_seconds
        self._offer = offer
        self._stopped = asyncio.Event()
        # Set (by ``wake`` or whoever holds the event) when cards await a slot.
        self._woken = woken or asyncio.Event()

    def wake(self) -> None:
        """Sweep now (called after a transaction that left a card awaiting a slot)."""
        self._woken.set()

    async def run(self) -> None:
        while not self._stopped.is_set():
            self._woken.clear()
            offered = 0
            try:
                offered = await self._offer(self.uow, BATCH)
                if offered:
                    log.info("collection slots offered", extra={"offered": offered})
            except Exception:
                log.exception("slot-offer sweep failed; retrying")
            if offered == BATCH:
                continue  # a full batch: more may be waiting
            await self._pause()

    async def _pause(self) -> None:
        stopped = asyncio.ensure_future(self._stopped.wait())
        woken = asyncio.ensure_future(self._woken.wait())
        try:
            await asyncio.wait(
                {stopped, woken}, timeout=self.interval, return_when="FIRST_COMPLETED"
            )
        finally:
            for waiter in (stopped, woken):
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter

    async def stop(self) -> None:
        self._stopped.set()
