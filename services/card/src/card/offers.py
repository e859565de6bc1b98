"""The slot-offer sweep: issued cards that found no free slot get one once the card
office publishes (or enlarges) the schedule."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from opr_shared.store.mongo import UnitOfWork

from card.handlers.collection import offer_waiting_slots

log = logging.getLogger(__name__)


class SlotOfferSweep:
    def __init__(self, uow: UnitOfWork, interval_seconds: float) -> None:
        self.uow = uow
        self.interval = interval_seconds
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        while not self._stopped.is_set():
            try:
                offered = await offer_waiting_slots(self.uow)
                if offered:
                    log.info("collection slots offered", extra={"offered": offered})
            except Exception:
                log.exception("slot-offer sweep failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), timeout=self.interval)

    async def stop(self) -> None:
        self._stopped.set()
