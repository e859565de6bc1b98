"""The local MongoDB's TTL sweeper lets go of its read snapshot once a sweep is done,
so the versions written while it waits for the next sweep can be discarded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from opr_shared import mongoserver
from secantus import storage as secantus_storage
from secantus.storage import Storage

PINNED = "transaction: transaction range of IDs currently pinned"
WRITES = 300


@pytest.fixture
def storage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Storage]:
    """A store on disk whose WiredTiger keeps statistics (how far back versions are
    kept), without a sweeper of its own: the tests sweep on a thread of theirs."""
    wt = secantus_storage.wt
    opened = wt.wiredtiger_open
    monkeypatch.setattr(
        wt, "wiredtiger_open", lambda home, config: opened(home, config + ",statistics=(fast)")
    )
    store = Storage(str(tmp_path / "db"), ttl_sweep_seconds=0)
    store.create_index(
        "identity", "login_attempts", "at_1", {"at": 1}, {"expireAfterSeconds": 3600}
    )
    store.insert("identity", "login_attempts", [{"at": datetime.now(UTC)} for _ in range(20)])
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def shipped_sweep() -> Iterator[None]:
    shipped = Storage.__dict__["prune_ttl_all_collections"]
    try:
        yield
    finally:
        Storage.prune_ttl_all_collections = shipped  # type: ignore[method-assign]


def pinned_range(storage: Any) -> int:
    session = storage._conn.open_session()
    try:
        stats = session.open_cursor("statistics:", None, None)
        while stats.next() == 0:
            description, _shown, value = stats.get_value()
            if description == PINNED:
                return int(value)
    finally:
        session.close()
    raise AssertionError(f"WiredTiger reports no {PINNED!r}")


def pinned_after_writes_while_a_sweeper_waits(storage: Storage) -> int:
    """Sweep once on a thread that then waits, as the sweeper does between sweeps;
    write meanwhile; answer how many transaction ids are pinned afterwards."""
    swept, done = threading.Event(), threading.Event()

    def sweeper() -> None:
        storage.prune_ttl_all_collections()
        swept.set()
        done.wait(30)
        storage._reset_thread_session()  # its session closed on its own thread

    thread = threading.Thread(target=sweeper)
    thread.start()
    try:
        assert swept.wait(10)
        for n in range(WRITES):
            storage.insert("identity", "login_attempts", [{"at": datetime.now(UTC), "n": n}])
        storage.release_thread_snapshot()
        storage.checkpoint()  # brings WiredTiger's oldest pinned id up to date
        return pinned_range(storage)
    finally:
        done.set()
        thread.join()


@pytest.mark.usefixtures("shipped_sweep")
def test_a_waiting_sweeper_pins_no_versions(storage: Storage) -> None:
    assert mongoserver.patch_ttl_sweeper()
    assert pinned_after_writes_while_a_sweeper_waits(storage) < WRITES // 10


@pytest.mark.usefixtures("shipped_sweep")
def test_as_shipped_a_waiting_sweeper_pins_every_later_version(storage: Storage) -> None:
    """The control: without the patch the same sweep holds its snapshot (if
    SecantusDB lets go by itself one day, this fails and the patch can go)."""
    assert pinned_after_writes_while_a_sweeper_waits(storage) >= WRITES


@pytest.mark.usefixtures("shipped_sweep")
def test_installing_twice_wraps_once() -> None:
    assert mongoserver.patch_ttl_sweeper()
    once = Storage.prune_ttl_all_collections
    assert mongoserver.patch_ttl_sweeper()
    assert Storage.prune_ttl_all_collections is once
