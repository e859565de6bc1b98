"""The local MongoDB reads a collection's options once per command, and a command
that writes options, or the next one, sees what it wrote."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opr_shared import mongoserver
from pymongo import MongoClient
from pymongo.errors import OperationFailure, WriteError
from secantus import SecantusDBServer
from secantus import server as secantus_server
from secantus.storage import Storage

Doc = dict[str, Any]
PATCHED = (
    "_iter_indexes",
    "_maybe_mark_multikey",
    "_coll_options",
    "_ensure_collection",
    *mongoserver.OPTIONS_WRITERS,
    *mongoserver.CATALOG_WRITERS,
)


def counting(reads: Counter[tuple[str, str]]) -> None:
    stored = Storage._coll_options

    def counted(self: Any, db: str, coll: str) -> Any:
        reads[(db, coll)] += 1
        return stored(self, db, coll)

    Storage._coll_options = counted


@pytest.fixture
def shipped() -> Iterator[None]:
    methods = {name: Storage.__dict__[name] for name in PATCHED}
    dispatch = secantus_server.dispatch
    try:
        yield
    finally:
        for name, method in methods.items():
            setattr(Storage, name, method)
        secantus_server.dispatch = dispatch


@pytest.fixture
def option_reads(shipped: None) -> Counter[tuple[str, str]]:
    """Reads of stored collection options, with the patches over the counting."""
    reads: Counter[tuple[str, str]] = Counter()
    counting(reads)
    assert mongoserver.patch_index_catalog()
    assert mongoserver.patch_collection_options()
    return reads


def client_of(server: SecantusDBServer) -> MongoClient[Doc]:
    return MongoClient(
        f"mongodb://127.0.0.1:{server.port}/?directConnection=true&retryWrites=false"
    )


def some_commands(client: MongoClient[Doc]) -> None:
    rows = client["t"]["rows"]
    rows.update_one({"_id": 1}, {"$set": {"v": 1}})
    rows.insert_one({"_id": 2, "v": 2})
    with client.start_session() as session, session.start_transaction():
        rows.find_one({"_id": 1}, session=session)
        rows.update_one({"_id": 2}, {"$inc": {"v": 1}}, session=session)
        rows.insert_one({"_id": 3, "v": 3}, session=session)


def test_as_shipped_a_command_reads_the_options_several_times(
    shipped: None, secantus_server: SecantusDBServer
) -> None:
    reads: Counter[tuple[str, str]] = Counter()
    counting(reads)
    client = client_of(secantus_server)
    client["t"]["rows"].insert_one({"_id": 1})
    reads.clear()
    some_commands(client)
    assert reads[("t", "rows")] >= 12


def test_a_command_reads_a_collections_options_once(
    option_reads: Counter[tuple[str, str]], secantus_server: SecantusDBServer
) -> None:
    client = client_of(secantus_server)
    client["t"]["rows"].insert_one({"_id": 1})
    option_reads.clear()
    some_commands(client)
    # Six commands on the collection, and the commit (which reads none).
    assert option_reads[("t", "rows")] == 5
    rows = client["t"]["rows"]
    assert sorted((d["_id"], d["v"]) for d in rows.find({"_id": {"$gt": 0}})) == [
        (1, 1),
        (2, 3),
        (3, 3),
    ]


def test_options_written_are_seen_by_the_next_command(
    option_reads: Counter[tuple[str, str]], secantus_server: SecantusDBServer
) -> None:
    client = client_of(secantus_server)
    db = client["t"]
    db.create_collection("checked", validator={"$jsonSchema": {"required": ["name"]}})
    checked = db["checked"]
    checked.insert_one({"name": "a"})
    with pytest.raises(WriteError):
        checked.insert_one({"other": "b"})
    db.command("collMod", "checked", validator={})
    checked.insert_one({"other": "b"})  # the changed options, at once
    assert checked.count_documents({}) == 2

    db.create_collection("capped", capped=True, size=4096, max=2)
    db["capped"].insert_many([{"n": n} for n in range(4)])
    db["capped"].insert_one({"n": 4})
    assert [d["n"] for d in db["capped"].find()] == [3, 4]
    assert db["capped"].options()["capped"] is True

    checked.rename("renamed")
    assert db["renamed"].count_documents({}) == 2
    assert "checked" not in db.list_collection_names()
    db.drop_collection("renamed")
    db["renamed"].insert_one({"again": True})  # a collection created anew
    assert db["renamed"].options() == {}
    with pytest.raises(OperationFailure):
        db.command("collMod", "missing", validator={})


def test_a_collection_created_in_a_transaction_keeps_one_identity(
    option_reads: Counter[tuple[str, str]], secantus_server: SecantusDBServer
) -> None:
    client = client_of(secantus_server)
    with client.start_session() as session, session.start_transaction():
        client["t"]["fresh"].insert_one({"_id": 1}, session=session)
        client["t"]["fresh"].insert_one({"_id": 2}, session=session)

    def uuid_of() -> Any:
        (info,) = client["t"].list_collections(filter={"name": "fresh"})
        return info["info"]["uuid"]

    assert uuid_of() == uuid_of()
    assert client["t"]["fresh"].count_documents({}) == 2


def test_within_a_command_reads_are_kept_until_options_are_written(
    option_reads: Counter[tuple[str, str]], secantus_server: SecantusDBServer
) -> None:
    storage = secantus_server.storage
    client_of(secantus_server)["t"]["rows"].insert_one({"_id": 1})
    mongoserver._command.catalog = {}  # as inside a command
    try:
        option_reads.clear()
        with storage._lock:
            first = storage._coll_options("t", "rows")
            assert first is not None
            first["changed by a caller"] = True
            assert "changed by a caller" not in (storage._coll_options("t", "rows") or {})
            assert storage._coll_options("t", "none") is None
            assert storage._coll_options("t", "none") is None
            assert option_reads == {("t", "rows"): 1, ("t", "none"): 2}  # absence not kept

            storage._ensure_collection("t", "rows")  # known to exist: nothing to write
            assert option_reads[("t", "rows")] == 1
            storage._ensure_collection("t", "created")  # may write: reads go to storage
            storage._coll_options("t", "rows")
            storage._coll_options("t", "rows")
            assert option_reads[("t", "rows")] == 3
            assert storage._coll_options("t", "created") == {}
    finally:
        del mongoserver._command.catalog


def test_a_catalog_change_does_not_forget_that_options_were_written(
    option_reads: Counter[tuple[str, str]], secantus_server: SecantusDBServer
) -> None:
    storage = secantus_server.storage
    client_of(secantus_server)["t"]["rows"].insert_one({"_id": 1})
    mongoserver._command.catalog = {}
    try:
        with storage._lock:
            storage._write_coll_options("t", "rows", {"note": "written"})
        storage.create_index("t", "rows", "v_1", {"v": 1})
        option_reads.clear()
        with storage._lock:
            assert (storage._coll_options("t", "rows") or {})["note"] == "written"
            assert (storage._coll_options("t", "rows") or {})["note"] == "written"
        assert option_reads[("t", "rows")] == 2
    finally:
        del mongoserver._command.catalog


def test_outside_a_command_options_are_read_as_shipped(
    option_reads: Counter[tuple[str, str]], secantus_server: SecantusDBServer
) -> None:
    storage = secantus_server.storage
    client_of(secantus_server)["t"]["rows"].insert_one({"_id": 1})
    option_reads.clear()
    with storage._lock:
        storage._coll_options("t", "rows")
        storage._coll_options("t", "rows")
    assert option_reads[("t", "rows")] == 2


def test_the_server_installs_it_after_the_catalog_it_shares(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    called: list[str] = []

    def recorder(name: str) -> Callable[[], bool]:
        def patch() -> bool:
            called.append(name)
            return True

        return patch

    for name in dir(mongoserver):
        if name.startswith("patch_"):
            monkeypatch.setattr(mongoserver, name, recorder(name))
    monkeypatch.setattr("secantus.cli.main", lambda argv: 0)
    assert mongoserver.main(["--port", "1"]) == 0
    assert "patch_collection_options" in called
    assert called.index("patch_index_catalog") < called.index("patch_collection_options")


def test_without_the_catalogs_cache_options_are_read_as_shipped(shipped: None) -> None:
    assert not getattr(Storage._iter_indexes, "opr_catalog_once", False)
    assert not mongoserver.patch_collection_options()
    assert not getattr(Storage._coll_options, "opr_options_once", False)
