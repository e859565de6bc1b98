"""The local MongoDB prunes idle sessions at most once a second, not on every
command, and remembers each database's profiler settings until they change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opr_shared import mongoserver
from secantus.sessions import DEFAULT_IDLE_TTL_SECONDS, SessionRegistry
from secantus.storage import Storage


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def lsid(n: int) -> bytes:
    return n.to_bytes(16, "big")


@pytest.fixture
def patched_sessions() -> Iterator[None]:
    shipped = (SessionRegistry._prune_locked, SessionRegistry.prune_idle)
    assert mongoserver.patch_session_registry()
    try:
        yield
    finally:
        SessionRegistry._prune_locked, SessionRegistry.prune_idle = shipped


class CountingSessions(dict[bytes, float]):
    """The registry's table, counting the passes over every session."""

    passes = 0

    def items(self) -> Any:
        self.passes += 1
        return super().items()


def registry(clock: Clock) -> tuple[SessionRegistry, CountingSessions]:
    reg = SessionRegistry(time_func=clock)
    table = CountingSessions()
    reg._sessions = table
    return reg, table


@pytest.mark.usefixtures("patched_sessions")
def test_commands_within_a_second_go_through_the_sessions_once() -> None:
    clock = Clock()
    reg, table = registry(clock)
    for n in range(500):
        reg.register(lsid(n % 50))
        clock.now += 0.001  # 500 commands in half a second
    assert table.passes == 1
    assert len(reg) == 50


@pytest.mark.usefixtures("patched_sessions")
def test_installing_twice_changes_nothing() -> None:
    assert mongoserver.patch_session_registry()
    inner = SessionRegistry._prune_locked.__wrapped__  # type: ignore[attr-defined]
    assert not getattr(inner, "opr_now_and_then", False)  # wrapped once, not twice
    clock = Clock()
    reg, table = registry(clock)
    reg._sessions[lsid(9)] = clock.now - DEFAULT_IDLE_TTL_SECONDS - 1
    for n in range(10):
        reg.register(lsid(n))
    assert table.passes == 1
    assert reg.prune_idle() == 0
    assert len(reg) == 10


def test_as_shipped_every_command_goes_through_every_session() -> None:
    """What the patch changes (the registry as SecantusDB ships it)."""
    clock = Clock()
    reg, table = registry(clock)
    for n in range(100):
        reg.register(lsid(n))
    assert table.passes == 100


@pytest.mark.usefixtures("patched_sessions")
def test_idle_sessions_are_still_dropped() -> None:
    clock = Clock()
    reg, _ = registry(clock)
    reg.register(lsid(1))
    reg.register(lsid(2))
    clock.now += DEFAULT_IDLE_TTL_SECONDS - 10
    reg.register(lsid(2))  # 2 used again, 1 left idle
    clock.now += 20
    reg.register(lsid(3))
    assert not reg.is_known(lsid(1))
    assert reg.is_known(lsid(2))
    assert reg.is_known(lsid(3))


@pytest.mark.usefixtures("patched_sessions")
def test_a_session_idle_too_long_goes_at_the_next_prune_within_a_second() -> None:
    clock = Clock()
    reg, _ = registry(clock)
    reg.register(lsid(1))
    clock.now += DEFAULT_IDLE_TTL_SECONDS - 0.5
    reg.register(lsid(2))  # prunes (nothing idle yet)
    clock.now += 0.7  # 1 is now idle past its time, but within a second of that prune
    reg.register(lsid(3))
    assert reg.is_known(lsid(1))
    clock.now += 0.5
    reg.register(lsid(3))
    assert not reg.is_known(lsid(1))


@pytest.mark.usefixtures("patched_sessions")
def test_an_explicit_prune_is_never_skipped() -> None:
    clock = Clock()
    reg, _ = registry(clock)
    reg.register(lsid(1))  # prunes
    reg._sessions[lsid(7)] = clock.now - DEFAULT_IDLE_TTL_SECONDS - 1  # long idle
    reg.register(lsid(2))  # within the second: no prune
    assert reg.is_known(lsid(7))
    assert reg.prune_idle() == 1
    assert not reg.is_known(lsid(7))
    assert reg.is_known(lsid(1))


# --- profiler settings --------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Storage]:
    shipped = (Storage.get_profile, Storage.set_profile)
    assert mongoserver.patch_profile_settings()
    s = Storage(str(tmp_path / "db"), ttl_sweep_seconds=0)
    try:
        yield s
    finally:
        s.close()
        Storage.get_profile, Storage.set_profile = shipped


def shipped_read(store: Storage, db: str) -> dict[str, Any]:
    return Storage.get_profile.__wrapped__(store, db)  # type: ignore[no-any-return]


def test_settings_are_read_from_storage_once(
    store: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    cursor = Storage._cursor

    def counting(self: Storage, uri: str, *args: Any, **kwargs: Any) -> Any:
        reads.append(uri)
        return cursor(self, uri, *args, **kwargs)

    monkeypatch.setattr(Storage, "_cursor", counting)
    for _ in range(20):
        assert store.get_profile("svc") == {"level": 0, "slowms": 100, "sampleRate": 1.0}
    assert len([uri for uri in reads if "profile" in uri]) == 1


def test_a_change_is_seen_at_once_and_matches_storage(store: Storage) -> None:
    assert store.get_profile("svc")["level"] == 0
    store.set_profile("svc", level=2, slowms=0, sample_rate=0.5)
    assert store.get_profile("svc") == {"level": 2, "slowms": 0, "sampleRate": 0.5}
    assert store.get_profile("svc") == shipped_read(store, "svc")
    assert store.get_profile("other") == {"level": 0, "slowms": 100, "sampleRate": 1.0}
    store.set_profile("svc", level=0)
    assert store.get_profile("svc") == shipped_read(store, "svc")
    assert store.get_profile("svc")["level"] == 0


def test_a_refused_change_leaves_the_settings(store: Storage) -> None:
    store.set_profile("svc", level=1, slowms=50)
    with pytest.raises(ValueError, match="level"):
        store.set_profile("svc", level=7)
    assert store.get_profile("svc") == {"level": 1, "slowms": 50, "sampleRate": 1.0}


def test_callers_cannot_change_what_is_remembered(store: Storage) -> None:
    store.get_profile("svc")["level"] = 2
    assert store.get_profile("svc")["level"] == 0
