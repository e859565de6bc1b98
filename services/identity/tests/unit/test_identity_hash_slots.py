"""A burst of logins never computes more password hashes at once than the bound,
so identity's resident memory stays at (bound x argon2 memory) above its base."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from identity.domain.passwords import HashParameters, PasswordHashing


class CountingHasher:
    """Stands in for argon2: records how many calls overlap."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def _busy(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(0.05)
        with self.lock:
            self.now -= 1

    def hash(self, password: str) -> str:
        self._busy()
        return f"hashed:{password}"

    def verify(self, stored_hash: str, password: str) -> bool:
        self._busy()
        return stored_hash == f"hashed:{password}"


def burst(max_concurrent: int) -> tuple[int, list[object]]:
    hashing = PasswordHashing(
        HashParameters(time_cost=1, memory_kib=8 * 1024, parallelism=1),
        max_concurrent=max_concurrent,
    )
    counting = CountingHasher()
    hashing._hasher = counting  # type: ignore[assignment]
    with ThreadPoolExecutor(max_workers=8) as pool:
        hashes = [pool.submit(hashing.hash, f"Secret-{i}-Kettle") for i in range(8)]
        checks = [pool.submit(hashing.verify, "hashed:Secret-1-Kettle", "Secret-1-Kettle")]
        results: list[object] = [f.result() for f in hashes + checks]
    return counting.peak, results


def test_hashes_and_verifications_wait_for_a_free_slot() -> None:
    peak, results = burst(max_concurrent=1)
    assert peak == 1
    assert results == [*(f"hashed:Secret-{i}-Kettle" for i in range(8)), True]


def test_the_bound_is_a_setting() -> None:
    peak, _ = burst(max_concurrent=3)
    assert 1 <= peak <= 3


def test_async_hashing_uses_only_its_own_few_threads() -> None:
    """Every thread that ever hashed keeps a malloc arena of about the argon2 memory,
    so the async methods must not spread hashes over a large shared pool."""
    import asyncio

    hashing = PasswordHashing(
        HashParameters(time_cost=1, memory_kib=8 * 1024, parallelism=1), max_concurrent=2
    )
    seen: set[str] = set()
    real_hash = hashing.hash

    def recording_hash(password: str) -> str:
        seen.add(threading.current_thread().name)
        return real_hash(password)

    hashing.hash = recording_hash  # type: ignore[method-assign]

    async def burst() -> list[bool]:
        hashes = await asyncio.gather(
            *(hashing.hash_async(f"Secret-{i}-Kettle") for i in range(12))
        )
        return list(
            await asyncio.gather(
                *(hashing.verify_async(h, f"Secret-{i}-Kettle") for i, h in enumerate(hashes))
            )
        )

    assert asyncio.run(burst()) == [True] * 12
    assert 1 <= len(seen) <= 2
    assert all(name.startswith("argon2") for name in seen)
