"""The local MongoDB's TTL sweeper finds expired documents through the TTL index:
it deletes what SecantusDB's own sweep deletes, with the same oplog entries, and
reads only those documents instead of every document of the collection."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opr_shared import mongoserver
from opr_shared.mongoserver import ttl_filter
from secantus.storage import Storage

NOW = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(hours=2)
NEW = NOW - timedelta(minutes=10)
HOUR = {"expireAfterSeconds": 3600}

SHIPPED: Callable[..., int] = Storage.__dict__["prune_ttl"]


def fill(store: Storage) -> None:
    """Documents a sweep at NOW must tell apart, in three collections."""
    store.create_index("svc", "outbox", "sent_at_1", {"sent_at": 1}, HOUR)
    store.create_index("svc", "outbox", "status_1_seq_1", {"status": 1, "seq": 1}, {})
    store.insert(
        "svc",
        "outbox",
        [
            {"_id": "old", "sent_at": OLD},
            {"_id": "new", "sent_at": NEW},
            {"_id": "pending", "status": "pending"},
            {"_id": "null", "sent_at": None},
            {"_id": "text", "sent_at": "2020-01-01"},
            {"_id": "number", "sent_at": 1},
            {"_id": "old-in-array", "sent_at": [NEW, OLD]},
            {"_id": "new-in-array", "sent_at": [NEW]},
            *({"_id": f"bulk-{n}", "sent_at": OLD if n % 3 else NEW} for n in range(300)),
        ],
    )
    # A partial TTL index expires only what its filter covers.
    store.create_index(
        "svc",
        "links",
        "expires_at_1",
        {"expires_at": 1},
        {"expireAfterSeconds": 0, "partialFilterExpression": {"kind": "download"}},
    )
    store.insert(
        "svc",
        "links",
        [
            {"_id": "download-old", "kind": "download", "expires_at": OLD},
            {"_id": "download-new", "kind": "download", "expires_at": NOW + timedelta(hours=1)},
            {"_id": "upload-old", "kind": "upload", "expires_at": OLD},
        ],
    )
    # Not TTL indexes as MongoDB reads them: compound, on _id.
    store.create_index("svc", "audit", "at_1_who_1", {"at": 1, "who": 1}, HOUR)
    store.insert("svc", "audit", [{"_id": "audit-old", "at": OLD, "who": "x"}])


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Storage, Storage]]:
    """Two stores with the same documents: one swept as shipped, one by index."""
    shipped, by_index = (Storage(str(tmp_path / n), ttl_sweep_seconds=0) for n in "ab")
    try:
        fill(shipped)
        fill(by_index)
        yield shipped, by_index
    finally:
        shipped.close()
        by_index.close()


def ids(store: Storage, coll: str) -> set[Any]:
    return {doc["_id"] for doc in store.find_matching("svc", coll, {})}


def deletions(store: Storage) -> list[tuple[str, Any]]:
    entries = store.read_oplog(start_seq=0, limit=100_000)
    return sorted((e["ns"], e["o"]["_id"]) for _seq, e in entries if e.get("op") == "d")


def counting_reads(store: Storage, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many documents the store reads in whole-collection scans from now on."""
    read = [0]
    scan = store._scan_docs

    def counted(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for row in scan(*args, **kwargs):
            read[0] += 1
            yield row

    monkeypatch.setattr(store, "_scan_docs", counted)
    return read


def test_deletes_what_the_shipped_sweep_deletes_with_the_same_oplog_entries(
    stores: tuple[Storage, Storage],
) -> None:
    shipped, by_index = stores
    for coll in ("outbox", "links", "audit"):
        expected = SHIPPED(shipped, "svc", coll, now=NOW)
        assert mongoserver._prune_ttl_by_index(by_index, "svc", coll, now=NOW) == expected
        assert ids(by_index, coll) == ids(shipped, coll)
    assert deletions(by_index) == deletions(shipped)
    assert ids(by_index, "outbox") == {
        "new",
        "pending",
        "null",
        "text",
        "number",
        "new-in-array",
        *(f"bulk-{n}" for n in range(0, 300, 3)),
    }
    assert ids(by_index, "links") == {"download-new", "upload-old"}
    assert ids(by_index, "audit") == {"audit-old"}


def test_reads_no_collection_whole_where_the_shipped_sweep_reads_every_document(
    stores: tuple[Storage, Storage], monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped, by_index = stores
    read_by_index = counting_reads(by_index, monkeypatch)
    read_shipped = counting_reads(shipped, monkeypatch)
    mongoserver._prune_ttl_by_index(by_index, "svc", "outbox", now=NOW)
    SHIPPED(shipped, "svc", "outbox", now=NOW)
    assert read_by_index[0] == 0
    assert read_shipped[0] == 308  # the control: every document of the collection


def test_a_sweep_without_now_expires_by_the_clock(tmp_path: Path) -> None:
    store = Storage(str(tmp_path / "db"), ttl_sweep_seconds=0)
    try:
        store.create_index("svc", "outbox", "sent_at_1", {"sent_at": 1}, HOUR)
        now = datetime.now(UTC)
        store.insert(
            "svc",
            "outbox",
            [{"_id": 1, "sent_at": now - timedelta(hours=2)}, {"_id": 2, "sent_at": now}],
        )
        assert mongoserver._prune_ttl_by_index(store, "svc", "outbox") == 1
        assert ids(store, "outbox") == {2}
    finally:
        store.close()


@pytest.mark.parametrize(
    ("keys", "options"),
    [
        ({"at": 1}, {}),
        ({"at": 1}, {"expireAfterSeconds": True}),
        ({"at": 1}, {"expireAfterSeconds": -1}),
        ({"at": 1}, {"expireAfterSeconds": float("nan")}),
        ({"at": 1}, {"expireAfterSeconds": "3600"}),
        ({"at": 1, "who": 1}, HOUR),
        ({"_id": 1}, HOUR),
        ({"at": "text"}, HOUR),
        ({"at": 1}, {"expireAfterSeconds": 1e300}),
    ],
)
def test_indexes_mongodb_does_not_expire_by_give_no_filter(
    keys: dict[str, Any], options: dict[str, Any]
) -> None:
    assert ttl_filter(keys, options, NOW) is None


def test_a_partial_index_filter_joins_the_expiry_as_one_flat_query() -> None:
    partial = {"expireAfterSeconds": 60, "partialFilterExpression": {"kind": "download"}}
    assert ttl_filter({"at": -1}, partial, NOW) == {
        "at": {"$lt": NOW - timedelta(seconds=60)},
        "kind": "download",
    }
    on_the_same_field = {"expireAfterSeconds": 0, "partialFilterExpression": {"at": {"$gt": OLD}}}
    assert ttl_filter({"at": 1}, on_the_same_field, NOW) == {
        "$and": [{"at": {"$lt": NOW}}, {"at": {"$gt": OLD}}]
    }


@pytest.fixture
def shipped_prune() -> Iterator[None]:
    try:
        yield
    finally:
        Storage.prune_ttl = SHIPPED  # type: ignore[method-assign]


@pytest.mark.usefixtures("shipped_prune")
def test_installing_twice_installs_once() -> None:
    assert mongoserver.patch_ttl_by_index()
    once = Storage.prune_ttl
    assert once is not SHIPPED
    assert mongoserver.patch_ttl_by_index()
    assert Storage.prune_ttl is once
