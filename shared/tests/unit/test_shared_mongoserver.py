"""The local MongoDB's transaction reaper: a busy transaction holds up no other,
and idle ones are still rolled back after their lifetime."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from opr_shared import mongoserver
from secantus.transactions import TransactionRegistry, TxnState

LIFETIME = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def patched() -> Iterator[None]:
    shipped = (TransactionRegistry._prune_locked, TransactionRegistry.prune_expired)
    assert mongoserver.patch_transaction_registry()
    try:
        yield
    finally:
        TransactionRegistry._prune_locked, TransactionRegistry.prune_expired = shipped  # type: ignore[method-assign]


def registry(clock: Clock) -> TransactionRegistry:
    return TransactionRegistry(lifetime_seconds=LIFETIME, time_func=clock)


def lsid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def start(reg: TransactionRegistry, n: int, number: int = 1) -> object:
    txn, error = reg.for_statement(lsid(n), None, number, start=True)
    assert error is None
    assert txn is not None
    return txn


@contextmanager
def busy_in_another_thread(txn: object) -> Iterator[None]:
    """The transaction's own lock held by another thread, as while one of its
    statements or its commit runs."""
    taken = threading.Event()
    release = threading.Event()

    def statement_in_progress() -> None:
        with txn.mutex:  # type: ignore[attr-defined]
            taken.set()
            release.wait(10)

    holder = threading.Thread(target=statement_in_progress)
    holder.start()
    try:
        assert taken.wait(5)
        yield
    finally:
        release.set()
        holder.join()


@pytest.mark.usefixtures("patched")
def test_a_statement_running_in_one_transaction_does_not_hold_up_another() -> None:
    clock = Clock()
    reg = registry(clock)
    busy = start(reg, 1)
    resolved = threading.Event()
    with busy_in_another_thread(busy):
        clock.now += 5  # past the next sweep

        def other_transaction() -> None:
            start(reg, 2)
            resolved.set()

        threading.Thread(target=other_transaction, daemon=True).start()
        # As shipped, the sweep waited here until the first transaction's statement ended.
        assert resolved.wait(2), "the second transaction waited for the first one's statement"


@pytest.mark.usefixtures("patched")
def test_an_idle_transaction_is_still_rolled_back_after_its_lifetime() -> None:
    clock = Clock()
    reg = registry(clock)
    idle = start(reg, 1)
    fresh_at = clock.now + LIFETIME - 1
    clock.now = fresh_at
    recent = start(reg, 2)
    clock.now += 2  # the first is idle past its lifetime, the second is not
    assert reg.prune_expired() == 1
    assert idle.state is TxnState.ABORTED  # type: ignore[attr-defined]
    assert recent.state is TxnState.IN_PROGRESS  # type: ignore[attr-defined]
    # The aborted transaction answers its next statement as ended.
    _txn, error = reg.for_statement(lsid(1), None, 1, start=False)
    assert error is not None
    assert error["codeName"] == "NoSuchTransaction"


@pytest.mark.usefixtures("patched")
def test_a_busy_transaction_is_passed_over_and_reaped_once_it_is_idle() -> None:
    clock = Clock()
    reg = registry(clock)
    txn = start(reg, 1)
    clock.now += LIFETIME + 1
    with busy_in_another_thread(txn):
        assert reg.prune_expired() == 0
        assert txn.state is TxnState.IN_PROGRESS  # type: ignore[attr-defined]
    assert reg.prune_expired() == 1
    assert txn.state is TxnState.ABORTED  # type: ignore[attr-defined]


@pytest.mark.usefixtures("patched")
def test_statements_sweep_at_most_once_a_second() -> None:
    clock = Clock()
    reg = registry(clock)
    idle = start(reg, 1)
    clock.now += LIFETIME - 0.5
    start(reg, 2)  # sweeps: the first is not idle long enough yet
    clock.now += 0.8  # now it is, but the last sweep was under a second ago
    start(reg, 3)
    assert idle.state is TxnState.IN_PROGRESS  # type: ignore[attr-defined]
    clock.now += 0.3
    start(reg, 4)
    assert idle.state is TxnState.ABORTED  # type: ignore[attr-defined]
