"""The upload memory budget: who gets room, who waits, who is turned away."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from documents.api.budget import Busy, UploadBudget
from fastapi import HTTPException
from starlette.requests import Request

# small_bytes=0 where a test is about the queue's order: none of its uploads is small.


def request(content_length: int | None) -> Request:
    headers = [] if content_length is None else [(b"content-length", str(content_length).encode())]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers})


def in_order(budget: UploadBudget, order: list[str]) -> Callable[[str, int], Awaitable[None]]:
    """An upload that notes its name in ``order`` once it has its room."""

    async def upload(name: str, size: int) -> None:
        await budget.acquire(size)
        order.append(name)

    return upload


async def test_uploads_that_fit_get_room_at_once_and_give_it_back() -> None:
    budget = UploadBudget(100, small_bytes=0, wait_seconds=1)
    assert await budget.acquire(60) == 60
    assert await budget.acquire(40) == 40
    assert budget.free == 0
    budget.release(60)
    budget.release(40)
    assert budget.free == 100


async def test_waiting_uploads_get_room_in_the_order_they_came() -> None:
    budget = UploadBudget(100, small_bytes=0, wait_seconds=5)
    await budget.acquire(90)
    order: list[str] = []
    upload = in_order(budget, order)

    large = asyncio.create_task(upload("large", 80))
    await asyncio.sleep(0)
    small = asyncio.create_task(upload("small", 5))
    await asyncio.sleep(0.05)
    # 10 bytes are free: enough for the small one, but the large one came first.
    assert order == []
    budget.release(90)
    await asyncio.gather(large, small)
    assert order == ["large", "small"]
    assert budget.free == 15


async def test_an_upload_larger_than_the_budget_waits_for_all_of_it() -> None:
    budget = UploadBudget(100, small_bytes=0, wait_seconds=5)
    await budget.acquire(30)
    whole = asyncio.create_task(budget.acquire(10_000))
    await asyncio.sleep(0.05)
    assert not whole.done()
    budget.release(30)
    assert await whole == 100
    assert budget.free == 0


async def test_an_upload_that_waits_too_long_is_busy_and_leaves_the_queue() -> None:
    budget = UploadBudget(100, small_bytes=0, wait_seconds=0.1)
    await budget.acquire(70)
    with pytest.raises(Busy):
        await budget.acquire(50)
    # Nothing of it stays reserved or queued: a later upload that fits is let in.
    assert budget.free == 30
    assert await budget.acquire(30) == 30


async def test_beyond_the_longest_queue_an_upload_is_busy_at_once() -> None:
    budget = UploadBudget(100, small_bytes=0, wait_seconds=5, max_waiting=2)
    await budget.acquire(100)
    waiting = [asyncio.create_task(budget.acquire(10)) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(Busy):  # at once: not after wait_seconds
        await asyncio.wait_for(budget.acquire(10), timeout=1)
    budget.release(100)
    assert await asyncio.gather(*waiting) == [10, 10]
    assert budget.free == 80


async def test_when_the_head_of_the_queue_gives_up_those_behind_it_move_on() -> None:
    budget = UploadBudget(100, small_bytes=0, wait_seconds=5)
    await budget.acquire(90)
    head = asyncio.create_task(budget.acquire(50))
    await asyncio.sleep(0)
    behind = asyncio.create_task(budget.acquire(10))
    await asyncio.sleep(0.05)
    assert not behind.done()
    head.cancel()  # the client went away
    assert await behind == 10
    assert budget.free == 0


async def test_a_busy_upload_is_answered_503_with_retry_after() -> None:
    budget = UploadBudget(100, small_bytes=0, wait_seconds=0.05)
    async with budget.held(request(None), max_bytes=1_000):
        assert budget.free == 0  # undeclared length: the largest file allowed
        with pytest.raises(HTTPException) as refused:
            async with budget.held(request(50), max_bytes=1_000):
                pass
    assert refused.value.status_code == 503
    assert refused.value.detail["code"] == "busy"
    assert refused.value.headers == {"Retry-After": "5"}
    assert budget.free == 100


async def test_room_is_given_back_when_the_upload_fails() -> None:
    budget = UploadBudget(1_000, small_bytes=0, wait_seconds=1)
    seen: list[int] = []

    async def failing_upload() -> None:
        async with budget.held(request(400), max_bytes=10_000):
            seen.append(budget.free)
            raise RuntimeError("the file check failed")

    with pytest.raises(RuntimeError):
        await failing_upload()
    assert seen == [600]
    assert budget.free == 1_000


async def test_a_small_upload_that_fits_passes_the_large_ones_waiting() -> None:
    budget = UploadBudget(100, wait_seconds=5, small_bytes=10)
    await budget.acquire(90)
    large = asyncio.create_task(budget.acquire(80))
    await asyncio.sleep(0)
    assert await asyncio.wait_for(budget.acquire(5), timeout=1) == 5  # at once
    assert not large.done()
    assert budget.free == 5
    budget.release(90)
    assert await large == 80
    assert budget.free == 15


async def test_a_small_upload_waiting_for_room_passes_a_large_one_that_does_not_fit() -> None:
    budget = UploadBudget(100, wait_seconds=5, small_bytes=10)
    await budget.acquire(60)
    await budget.acquire(38)
    order: list[str] = []
    upload = in_order(budget, order)

    large = asyncio.create_task(upload("large", 80))
    await asyncio.sleep(0)
    small = asyncio.create_task(upload("small", 5))
    await asyncio.sleep(0.05)
    assert order == []  # 2 bytes free: room for neither
    budget.release(38)  # 40 free: the small one's room, not the large one's
    await small
    assert order == ["small"]
    budget.release(60)
    await large
    assert order == ["small", "large"]
    assert budget.free == 15


async def test_large_uploads_keep_their_order_while_small_ones_pass() -> None:
    budget = UploadBudget(100, wait_seconds=5, small_bytes=10)
    await budget.acquire(60)
    order: list[str] = []
    upload = in_order(budget, order)

    first = asyncio.create_task(upload("first large", 50))
    await asyncio.sleep(0)
    second = asyncio.create_task(upload("second large", 30))  # would fit, but came later
    await asyncio.sleep(0)
    small = asyncio.create_task(upload("small", 10))
    await asyncio.sleep(0.05)
    assert order == ["small"]
    budget.release(60)
    await asyncio.gather(first, second, small)
    assert order == ["small", "first large", "second large"]
    assert budget.free == 10


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_retry_after_is_five_seconds_when_no_upload_has_finished_lately() -> None:
    clock = Clock()
    budget = UploadBudget(100, small_bytes=0, wait_seconds=5, clock=clock)
    assert budget.retry_after(50) == 5
    await budget.acquire(100)
    budget.release(100)
    clock.now += 31  # that one is older than the window now
    assert budget.retry_after(50) == 5


async def test_retry_after_is_the_time_the_queue_ahead_takes_at_the_recent_pace() -> None:
    clock = Clock()
    budget = UploadBudget(100, small_bytes=0, wait_seconds=5, max_waiting=10, clock=clock)
    for _ in range(10):  # 100 bytes given back a second for ten seconds
        await budget.acquire(100)
        clock.now += 1
        budget.release(100)
    await budget.acquire(100)
    waiting = [asyncio.create_task(budget.acquire(100)) for _ in range(10)]
    await asyncio.sleep(0)
    # ten uploads of 100 bytes wait, and the one turned away: 11 s at 100 bytes/s
    assert budget.retry_after(100) == 11
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    assert budget.retry_after(100) == 5  # only itself ahead: 1 s, but never under 5


async def test_retry_after_is_never_more_than_a_minute() -> None:
    clock = Clock()
    budget = UploadBudget(10_000, small_bytes=0, wait_seconds=5, clock=clock)
    await budget.acquire(10)
    clock.now += 30
    budget.release(10)  # 10 bytes in 30 s
    assert budget.retry_after(10_000) == 60


async def test_a_busy_upload_is_told_when_to_come_back_from_the_queue_ahead() -> None:
    clock = Clock()
    budget = UploadBudget(1_000, small_bytes=0, wait_seconds=5, max_waiting=1, clock=clock)
    await budget.acquire(1_000)
    clock.now += 4
    budget.release(1_000)  # 250 bytes a second
    await budget.acquire(1_000)
    waiting = asyncio.create_task(budget.acquire(4_000))  # waits for all 1,000
    await asyncio.sleep(0)
    with pytest.raises(HTTPException) as refused:
        async with budget.held(request(6_000), max_bytes=100_000):
            pass
    # 1,000 waiting ahead and its own 1,000 (a request counts at most the whole budget)
    assert refused.value.headers == {"Retry-After": "8"}
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
