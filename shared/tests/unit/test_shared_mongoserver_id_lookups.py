"""A write on the local MongoDB whose filter holds an ``_id`` equality beside
``$and``/``$or``/``$nor`` (as every findAndModify's write does) looks the
document up by ``_id`` rather than scanning the collection, and matches the
same documents as before."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opr_shared import mongoserver
from pymongo import MongoClient, ReturnDocument
from secantus import SecantusDBServer
from secantus.storage import Storage

Doc = dict[str, Any]


@pytest.fixture
def scans() -> Iterator[list[str]]:
    """Collections scanned whole, counted beneath the patch; the shipped methods
    are back afterwards."""
    shipped = {name: Storage.__dict__[name] for name in ("_scan_docs", "_try_index_id_keys")}
    scanned: list[str] = []
    scan = Storage._scan_docs

    def counted(self: Any, db: str, coll: str, *args: Any, **kwargs: Any) -> Any:
        scanned.append(coll)
        return scan(self, db, coll, *args, **kwargs)

    Storage._scan_docs = counted
    try:
        yield scanned
    finally:
        for name, method in shipped.items():
            setattr(Storage, name, method)


def _counters(server: SecantusDBServer) -> Any:
    client: MongoClient[Doc] = MongoClient(
        f"mongodb://127.0.0.1:{server.port}/?directConnection=true"
    )
    counters = client.t.counters
    counters.insert_many([{"_id": f"c{i}", "n": i % 3} for i in range(50)])
    return counters


def test_find_and_modify_by_id_scans_nothing_once_installed(
    scans: list[str], start_secantus: Callable[[], SecantusDBServer]
) -> None:
    counters = _counters(start_secantus())

    def increment() -> Doc | None:
        found: Doc | None = counters.find_one_and_update(
            {"_id": "c7", "n": {"$gte": 0}},
            {"$inc": {"n": 10}},
            return_document=ReturnDocument.AFTER,
        )
        return found

    assert increment() == {"_id": "c7", "n": 11}
    assert "counters" in scans  # as shipped: the write's filter has "$and"
    scans.clear()
    assert mongoserver.patch_id_lookups_beside_operators()
    assert increment() == {"_id": "c7", "n": 21}
    assert scans == []


@pytest.mark.parametrize(
    ("condition", "matched"),
    [
        ({"$and": [{"n": {"$gte": 1}}]}, {"c1", "c2"}),
        ({"$and": [{"n": 9}]}, set()),
        ({"$or": [{"n": 0}, {"n": 2}]}, {"c0", "c2"}),
        ({"$nor": [{"n": 0}]}, {"c1", "c2"}),
    ],
)
def test_an_id_beside_an_operator_matches_what_it_did_as_shipped(
    scans: list[str],
    start_secantus: Callable[[], SecantusDBServer],
    condition: Doc,
    matched: set[str],
) -> None:
    assert mongoserver.patch_id_lookups_beside_operators()
    counters = _counters(start_secantus())
    ids = ["c0", "c1", "c2", "missing"]
    for doc_id in ids:
        counters.update_one({"_id": doc_id, **condition}, {"$set": {"hit": True}})
    counters.update_many({"_id": {"$in": ids}, **condition}, {"$inc": {"hits": 1}})
    counters.delete_many({"_id": {"$in": ids}, **condition, "hit": True})
    assert scans == []
    left = {doc["_id"] for doc in counters.find({"_id": {"$in": ids}})}
    assert left == {"c0", "c1", "c2"} - matched
    assert counters.count_documents({"hit": True}) == 0
    assert counters.count_documents({}) == 50 - len(matched)


def test_other_operators_beside_an_id_are_planned_as_shipped(
    scans: list[str], start_secantus: Callable[[], SecantusDBServer]
) -> None:
    assert mongoserver.patch_id_lookups_beside_operators()
    counters = _counters(start_secantus())
    result = counters.update_one(
        {"_id": "c4", "$expr": {"$eq": ["$n", 1]}}, {"$set": {"hit": True}}
    )
    assert result.modified_count == 1
    assert scans == ["counters"]
