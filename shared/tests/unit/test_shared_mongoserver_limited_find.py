"""A sorted find with a limit, on the local MongoDB, decodes only what it returns
where its index walk is in the sort's order: the same documents in the same order
as SecantusDB's own find, which decodes every match and sorts them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opr_shared import mongoserver
from secantus import storage as secantus_storage
from secantus.storage import Storage

T0 = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=500)

assert mongoserver.patch_limited_finds()
PATCHED: Callable[..., Any] = Storage.find_matching
SHIPPED: Callable[..., Any] = PATCHED.__wrapped__  # type: ignore[attr-defined]


def fill(store: Storage) -> None:
    store.create_index("svc", "mail", "due", {"status": 1, "next_attempt_at": 1}, {})
    store.create_index("svc", "mail", "lease", {"status": 1, "lease_until": -1}, {})
    store.create_index("svc", "mail", "who", {"student_no": 1, "status": 1, "seq": 1}, {})
    docs: list[dict[str, Any]] = []
    for n in range(600):
        docs.append(
            {
                "_id": f"m{n:04d}",
                "status": ("pending", "sent", "sending")[n % 3],
                # Ties every four, and not in insertion order.
                "next_attempt_at": T0 + timedelta(minutes=(n * 7919) % 997 // 4),
                "lease_until": T0 + timedelta(minutes=(n * 31) % 50),
                "student_no": f"s{n % 5}",
                "seq": (n * 13) % 40,
                "body": "x" * 200,
            }
        )
    docs += [
        {"_id": "no-date", "status": "pending"},
        {"_id": "null-date", "status": "pending", "next_attempt_at": None},
        {"_id": "text-date", "status": "pending", "next_attempt_at": "2026-08-01"},
        {"_id": "number-date", "status": "pending", "next_attempt_at": 5},
        {"_id": "other-status", "status": "failed", "next_attempt_at": T0},
    ]
    store.insert("svc", "mail", docs)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Storage]:
    s = Storage(str(tmp_path / "db"), ttl_sweep_seconds=0)
    try:
        fill(s)
        yield s
    finally:
        s.close()


CASES: list[tuple[dict[str, Any], dict[str, int], int, dict[str, Any]]] = [
    ({"status": "pending", "next_attempt_at": {"$lte": NOW}}, {"next_attempt_at": 1}, 4, {}),
    ({"status": "pending", "next_attempt_at": {"$lte": NOW}}, {"next_attempt_at": 1}, 1, {}),
    (
        {"status": "pending", "next_attempt_at": {"$lte": T0 + timedelta(minutes=30)}},
        {"next_attempt_at": 1},
        50,
        {},
    ),
    (
        {"status": "pending", "next_attempt_at": {"$gt": T0 + timedelta(minutes=100)}},
        {"next_attempt_at": 1},
        7,
        {"_id": 1},
    ),
    ({"status": "pending", "next_attempt_at": {"$lte": NOW}}, {"next_attempt_at": 1}, 9000, {}),
    # Against the index's direction, and a descending index field.
    ({"status": "pending", "next_attempt_at": {"$lte": NOW}}, {"next_attempt_at": -1}, 5, {}),
    ({"status": "sending", "lease_until": {"$lt": NOW}}, {"lease_until": -1}, 6, {}),
    ({"status": "sending", "lease_until": {"$lt": NOW}}, {"lease_until": 1}, 6, {}),
    # Two equalities before the range; a sort on another field; $in.
    ({"student_no": "s2", "status": "sent", "seq": {"$gte": 10}}, {"seq": 1}, 3, {}),
    ({"status": "pending", "next_attempt_at": {"$lte": NOW}}, {"_id": 1}, 4, {}),
    ({"status": "pending", "next_attempt_at": {"$in": [T0, NOW]}}, {"next_attempt_at": 1}, 2, {}),
]


@pytest.mark.parametrize(("query", "sort", "limit", "projection"), CASES)
def test_the_same_documents_in_the_same_order(
    store: Storage,
    query: dict[str, Any],
    sort: dict[str, int],
    limit: int,
    projection: dict[str, Any],
) -> None:
    options = {"sort": sort, "limit": limit, "projection": projection or None}
    shipped = SHIPPED(store, "svc", "mail", query, **options)
    patched = PATCHED(store, "svc", "mail", query, **options)
    assert patched == shipped
    assert len(shipped) == min(limit, len(SHIPPED(store, "svc", "mail", query)))


def decoded_by(store: Storage, find: Callable[..., Any], *args: Any, **options: Any) -> int:
    counted = {"docs": 0}
    fetch = store._docs_by_recordids

    def counting(db: str, coll: str, recordids: list[int]) -> list[dict[str, Any]]:
        docs = fetch(db, coll, recordids)
        counted["docs"] += len(docs)
        return docs

    store._docs_by_recordids = counting  # type: ignore[method-assign]
    try:
        find(store, *args, **options)
    finally:
        del store._docs_by_recordids
    return counted["docs"]


def test_a_claim_decodes_only_what_it_takes(store: Storage) -> None:
    query = {"status": "pending", "next_attempt_at": {"$lte": NOW}}
    # As the server asks: it binds $$NOW for every find.
    options: dict[str, Any] = {"sort": {"next_attempt_at": 1}, "limit": 4, "let": {"NOW": NOW}}
    # The walk reaches the 200 pending dates and the null, number and text
    # values below them (left out by the filter's match).
    assert decoded_by(store, SHIPPED, "svc", "mail", query, **options) == 204
    assert decoded_by(store, PATCHED, "svc", "mail", query, **options) <= 4 + 32
    # Sorted against the walk, every match is decoded, as before.
    options["sort"] = {"next_attempt_at": -1}
    assert decoded_by(store, PATCHED, "svc", "mail", query, **options) == 204


def test_a_claim_walks_only_the_index_entries_it_needs(
    store: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = {"entries": 0}
    unpack = secantus_storage._unpack_entry

    def counting(packed: bytes) -> Any:
        read["entries"] += 1
        return unpack(packed)

    monkeypatch.setattr(secantus_storage, "_unpack_entry", counting)
    query = {"status": "pending", "next_attempt_at": {"$lte": NOW}}
    options: dict[str, Any] = {"sort": {"next_attempt_at": 1}, "limit": 4, "let": {"NOW": NOW}}
    SHIPPED(store, "svc", "mail", query, **options)
    assert read["entries"] > 204  # the whole range, and the entry that ends it
    read["entries"] = 0
    found = PATCHED(store, "svc", "mail", query, **options)
    assert len(found) == 4
    assert read["entries"] <= 4 + 32 + 1  # a chunk of record ids, as documents are read


def test_a_later_claim_sees_what_the_last_one_changed(store: Storage) -> None:
    query = {"status": "pending", "next_attempt_at": {"$lte": NOW}}
    options: dict[str, Any] = {"sort": {"next_attempt_at": 1}, "limit": 3}
    first = PATCHED(store, "svc", "mail", query, **options)
    store.update_matching("svc", "mail", {"_id": first[0]["_id"]}, {"$set": {"status": "sent"}})
    again = PATCHED(store, "svc", "mail", query, **options)
    assert again == SHIPPED(store, "svc", "mail", query, **options)
    assert first[0]["_id"] not in [doc["_id"] for doc in again]
    assert [doc["_id"] for doc in again[:2]] == [doc["_id"] for doc in first[1:]]


def test_installing_twice_wraps_once() -> None:
    assert mongoserver.patch_limited_finds()
    assert Storage.find_matching is PATCHED
    assert not hasattr(SHIPPED, "__wrapped__")
