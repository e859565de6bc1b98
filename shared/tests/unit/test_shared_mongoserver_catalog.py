"""The local MongoDB reads a collection's index catalog once per command, and a
command that changes the catalog, or the next one, sees the change."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from opr_shared import mongoserver
from pymongo import MongoClient
from pymongo.errors import OperationFailure
from secantus import SecantusDBServer
from secantus import server as secantus_server
from secantus.storage import Storage

Doc = dict[str, Any]


@pytest.fixture
def catalog_reads() -> Iterator[Counter[tuple[str, str]]]:
    """Reads of the stored catalog by collection, with the once-per-command
    patch installed over the counting (restored afterwards)."""
    shipped = {
        name: Storage.__dict__[name]
        for name in ("_iter_indexes", "_maybe_mark_multikey", *mongoserver.CATALOG_WRITERS)
    }
    shipped_dispatch = secantus_server.dispatch
    reads: Counter[tuple[str, str]] = Counter()
    stored = Storage._iter_indexes

    def counted(self: Any, db: str, coll: str) -> Iterator[Any]:
        reads[(db, coll)] += 1
        yield from stored(self, db, coll)

    Storage._iter_indexes = counted  # type: ignore[method-assign]
    assert mongoserver.patch_index_catalog()
    try:
        yield reads
    finally:
        for name, method in shipped.items():
            setattr(Storage, name, method)
        secantus_server.dispatch = shipped_dispatch


@pytest.fixture
def server(secantus_server: SecantusDBServer) -> SecantusDBServer:
    return secantus_server


def client_of(server: SecantusDBServer) -> MongoClient[Doc]:
    return MongoClient(f"mongodb://127.0.0.1:{server.port}/?directConnection=true")


def test_one_command_reads_a_collections_catalog_once(
    catalog_reads: Counter[tuple[str, str]], server: SecantusDBServer
) -> None:
    rows = client_of(server)["t"]["rows"]
    for keys in (["status", "year"], ["year", "due"], ["name"], ["seq"]):
        rows.create_index([(key, 1) for key in keys])
    rows.insert_many(
        [{"status": "new", "year": 2026, "due": n, "name": f"s{n}", "seq": n} for n in range(20)]
    )

    catalog_reads.clear()
    result = rows.update_many({"status": "new"}, {"$set": {"status": "done", "name": "x"}})
    assert result.modified_count == 20
    # As shipped: planning, then again for every index step of every document.
    assert catalog_reads[("t", "rows")] == 1

    catalog_reads.clear()
    assert rows.count_documents({"status": "done", "year": 2026}) == 20
    assert [d["seq"] for d in rows.find({"name": "x"}).sort("seq", -1).limit(3)] == [19, 18, 17]
    assert catalog_reads[("t", "rows")] == 2  # one per command


def test_catalog_changes_are_seen_at_once(
    catalog_reads: Counter[tuple[str, str]], server: SecantusDBServer
) -> None:
    rows = client_of(server)["t"]["rows"]
    rows.insert_many([{"tags": "a", "n": 1}, {"tags": "z", "n": 2}])
    rows.create_index("tags")
    assert [d["n"] for d in rows.find({"tags": "z"}).hint("tags_1")] == [2]

    # Within one command an array makes the index multikey; the documents
    # after it are indexed knowing that.
    rows.insert_many([{"tags": "b", "n": 3}, {"tags": ["c", "d"], "n": 4}, {"tags": ["d"], "n": 5}])
    flags = {
        name: opts.get("multikey") for name, _, opts in server.storage._iter_indexes("t", "rows")
    }
    assert flags == {"tags_1": True}
    assert [d["n"] for d in rows.find({"tags": "d"}).sort("n", 1).hint("tags_1")] == [4, 5]
    assert sorted(d["n"] for d in rows.find({"tags": {"$in": ["a", "c"]}}).hint("tags_1")) == [1, 4]

    rows.drop_index("tags_1")
    with pytest.raises(OperationFailure):
        rows.find_one({"tags": "d"}, hint="tags_1")
    rows.create_index([("n", 1)], name="by_n")
    assert [d["n"] for d in rows.find({"n": {"$gte": 4}}).hint("by_n")] == [4, 5]
    rows.rename("renamed")
    assert [d["n"] for d in client_of(server)["t"]["renamed"].find({"n": 5}).hint("by_n")] == [5]
