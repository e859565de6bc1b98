"""File checks run on two threads, and staff work waiting there goes before
students' uploads waiting there."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from documents.domain.photo import PhotoSpec
from documents.handlers import review
from documents.offload import STAFF, STUDENT, PriorityThreads, off_loop
from documents.store import PHOTOS


def blocked_pool(workers: int) -> tuple[PriorityThreads, threading.Event, threading.Barrier]:
    """A pool whose threads are all held until the event is set."""
    pool = PriorityThreads(max_workers=workers, thread_name_prefix="test")
    release = threading.Event()
    holding = threading.Barrier(workers + 1)

    def hold() -> None:
        holding.wait()
        release.wait(10)

    for _ in range(workers):
        pool.submit(hold)
    holding.wait(10)  # every thread is busy now
    return pool, release, holding


def test_staff_work_waiting_goes_before_uploads_waiting() -> None:
    pool, release, _ = blocked_pool(1)
    ran: list[str] = []
    futures = [pool.submit_at(STUDENT, ran.append, f"upload {n}") for n in range(3)]
    futures.append(pool.submit_at(STAFF, ran.append, "approval 1"))
    futures.append(pool.submit_at(STUDENT, ran.append, "upload 3"))
    futures.append(pool.submit_at(STAFF, ran.append, "approval 2"))
    assert pool.waiting() == 6
    release.set()
    for future in futures:
        future.result(10)
    assert ran == [
        "approval 1",
        "approval 2",
        "upload 0",
        "upload 1",
        "upload 2",
        "upload 3",
    ]


def test_no_more_than_the_pools_threads_run_at_once() -> None:
    pool = PriorityThreads(max_workers=2, thread_name_prefix="test")
    lock = threading.Lock()
    running = 0
    most = 0

    def work() -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        threading.Event().wait(0.02)
        with lock:
            running -= 1
        return threading.current_thread().name

    names = {f.result(10) for f in [pool.submit(work) for _ in range(12)]}
    assert most == 2
    assert names == {"test_0", "test_1"}


def test_a_failure_reaches_the_caller_and_the_threads_go_on() -> None:
    pool = PriorityThreads(max_workers=1, thread_name_prefix="test")

    def fails() -> None:
        raise ValueError("not an image")

    with pytest.raises(ValueError, match="not an image"):
        pool.submit(fails).result(10)
    assert pool.submit(lambda: 42).result(10) == 42


def test_cancelled_work_waiting_is_not_run() -> None:
    pool, release, _ = blocked_pool(1)
    ran: list[int] = []
    waiting = pool.submit(ran.append, 1)
    assert waiting.cancel()
    after = pool.submit(ran.append, 2)
    release.set()
    after.result(10)
    assert ran == [2]


async def test_off_loop_runs_the_work_off_the_event_loop() -> None:
    loop_thread = threading.current_thread()

    def work(a: int, *, b: int) -> tuple[int, bool]:
        return a + b, threading.current_thread() is loop_thread

    assert await off_loop(work, 1, b=2) == (3, False)
    assert await off_loop(work, 2, b=3, priority=STAFF) == (5, False)


async def test_an_approval_crops_the_card_image_as_staff_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[int] = []

    class Stop(Exception):
        pass

    async def recording_off_loop(work: Any, *args: Any, priority: int = STUDENT) -> Any:
        asked.append(priority)
        raise Stop

    class Photos:
        async def find_one(self, query: dict[str, Any]) -> dict[str, Any]:
            return {"_id": query["_id"], "status": "pending", "object_key": "photos/x/y"}

    class Uow:
        db = {PHOTOS: Photos()}

    class Objects:
        async def get(self, key: str) -> bytes:
            return b"photo"

    monkeypatch.setattr(review, "off_loop", recording_off_loop)
    with pytest.raises(Stop):
        await review.approve_photo(
            Uow(),  # type: ignore[arg-type]
            Objects(),  # type: ignore[arg-type]
            PhotoSpec(),
            photo_id=uuid.uuid4(),
            staff_id="officer",
        )
    assert asked == [STAFF]
