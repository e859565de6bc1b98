"""How many bytes of uploads the process holds at once.

An upload is in memory from the moment its body is read until its record is
stored: its bytes, the copy the multipart parser made, the decoded pixels. Two
hundred students sending a phone photo at the same moment would hold hundreds of
MB. Each upload therefore reserves its size (the declared ``Content-Length``, or
the largest file allowed when none is declared) before its body is read, and
gives it back when its answer is ready. Uploads that do not fit wait their turn,
in the order they came; one still waiting after ``wait_seconds`` is answered 503
with ``Retry-After``, and nothing of it was read or stored. A waiting upload is
not free either (the server has already buffered up to 64 KB of its body), so at
most ``max_waiting`` wait: the next is answered 503 at once.

An upload no larger than ``small_bytes`` (64 KiB: about what the server buffers
of a waiting body anyway) does not queue behind larger ones: it takes its room
as soon as room for it is free. Making a form-sized PDF wait for a queue of
phone photos saved no memory and kept the student waiting for seconds. It still
counts against the budget, so small uploads cannot pile up without bound.

A request that reserves more than the whole budget waits for all of it, so the
largest allowed file always gets through on its own.

``Retry-After`` is the time the bytes already waiting would take to get their
room at the pace uploads gave room back over the last half minute (5 s at least,
60 at most). A fixed 5 s had every turned-away photo sent again five or six
times while a long queue drained: in an intake of 8,000 students at 200 at once,
50,000 photos of 1 MB were sent and refused, each carried through the gateway
and read in part, for 8,000 stored.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import HTTPException, Request
from prometheus_client import Counter

from documents.api.body import body_limit

UPLOADS_TURNED_AWAY = Counter(
    "uploads_turned_away_total",
    "Uploads answered 503 because the upload memory budget stayed full for too long",
)
RETRY_AFTER_SECONDS = 5
MAX_RETRY_AFTER_SECONDS = 60
PACE_WINDOW_SECONDS = 30.0
SMALL_UPLOAD_BYTES = 64 * 1024


class Busy(Exception):
    pass


class UploadBudget:
    def __init__(
        self,
        limit_bytes: int,
        wait_seconds: float,
        max_waiting: int = 64,
        small_bytes: int = SMALL_UPLOAD_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit_bytes
        self.free = limit_bytes
        self.wait_seconds = wait_seconds
        self.max_waiting = max_waiting
        self.small_bytes = small_bytes
        self._clock = clock
        self._since = clock()
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._given_back: deque[tuple[float, int]] = deque()  # (when, bytes), the last window

    def retry_after(self, size: int) -> int:
        """Seconds an upload of ``size`` turned away now had better wait before it is
        sent again: what waits ahead of it, and itself, at the recent pace."""
        now = self._clock()
        self._forget_before(now - PACE_WINDOW_SECONDS)
        if not self._given_back:
            return RETRY_AFTER_SECONDS
        span = max(min(now - self._since, PACE_WINDOW_SECONDS), 1.0)
        pace = sum(given for _, given in self._given_back) / span
        ahead = sum(waiting for waiting, _ in self._waiting) + min(size, self.limit)
        return max(RETRY_AFTER_SECONDS, min(MAX_RETRY_AFTER_SECONDS, math.ceil(ahead / pace)))

    def _forget_before(self, moment: float) -> None:
        while self._given_back and self._given_back[0][0] < moment:
            self._given_back.popleft()

    async def acquire(self, size: int) -> int:
        """Reserve ``size`` bytes (at most the whole budget) and return what was
        reserved; raise :class:`Busy` after waiting ``wait_seconds`` in vain, or at
        once when ``max_waiting`` uploads wait already."""
        size = min(size, self.limit)
        if size <= self.free and (not self._waiting or size <= self.small_bytes):
            self.free -= size
            return size
        if len(self._waiting) >= self.max_waiting:
            raise Busy
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, turn)
        self._waiting.append(entry)
        try:
            async with asyncio.timeout(self.wait_seconds):
                await turn
        except BaseException as exc:
            if turn.done() and not turn.cancelled():
                self.release(size)  # granted in the same instant
            else:
                self._waiting.remove(entry)
                turn.cancel()
                self._grant()  # those behind it may fit now
            if isinstance(exc, TimeoutError):
                raise Busy from None
            raise
        return size

    def release(self, size: int) -> None:
        now = self._clock()
        self._given_back.append((now, size))
        self._forget_before(now - PACE_WINDOW_SECONDS)
        self.free += size
        self._grant()

    def _grant(self) -> None:
        """Give room to waiting uploads in order; once a large one does not fit, only
        small ones behind it may still pass."""
        blocked = False
        for entry in list(self._waiting):
            size, turn = entry
            if turn.done():
                continue  # cancelled: its own acquire takes it out of the queue
            small = size <= self.small_bytes
            if size > self.free or (blocked and not small):
                blocked = blocked or not small
                continue
            self._waiting.remove(entry)
            self.free -= size
            turn.set_result(None)

    @asynccontextmanager
    async def held(self, request: Request, max_bytes: int) -> AsyncIterator[None]:
        """Hold room for ``request``'s upload while the block runs."""
        most = body_limit(max_bytes)  # a longer body is refused as soon as it is read
        declared = request.headers.get("content-length", "")
        size = min(int(declared), most) if declared.isdigit() else most
        try:
            reserved = await self.acquire(size)
        except Busy:
            UPLOADS_TURNED_AWAY.inc()
            raise HTTPException(
                503,
                {
                    "code": "busy",
                    "message": "Many files are arriving at once: nothing was stored, "
                    "send this one again in a few seconds.",
                },
                headers={"Retry-After": str(self.retry_after(size))},
            ) from None
        try:
            yield
        finally:
            self.release(reserved)
