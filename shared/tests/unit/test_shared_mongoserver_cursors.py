"""The local MongoDB's transactions let go of the rows their cursors stand on when
each statement ends, and keep their snapshot and their writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opr_shared import mongoserver
from pymongo import MongoClient
from secantus import SecantusDBServer
from secantus import storage as secantus_storage
from secantus.storage import Storage

Doc = dict[str, Any]


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    store = Storage(str(tmp_path / "db"), ttl_sweep_seconds=0)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def shipped_transactions() -> Iterator[None]:
    shipped = Storage.__dict__["use_user_transaction"]
    try:
        yield
    finally:
        Storage.use_user_transaction = shipped


def stands_on_a_row(cursor: Any) -> bool:
    try:
        cursor.get_key()
    except secantus_storage.wt.WiredTigerError:  # an unpositioned cursor has no key
        return False
    return True


def positioned(cursors: dict[Any, Any]) -> list[Any]:
    """The cursors that still stand on a row (and so hold its page)."""
    return [key for key, cursor in cursors.items() if stands_on_a_row(cursor)]


def one_statement(store: Storage) -> Any:
    """A transaction that has run one statement, a read by ``_id``."""
    store.insert("d", "c", [{"_id": n, "v": 0} for n in range(5)])
    handle = store.begin_user_transaction()
    with store.use_user_transaction(handle):
        assert [d["_id"] for d in store.find_matching("d", "c", {"_id": 3})] == [3]
    return handle


@pytest.mark.usefixtures("shipped_transactions")
def test_a_transaction_between_statements_stands_on_no_row(storage: Storage) -> None:
    assert mongoserver.patch_transaction_cursors()
    handle = one_statement(storage)
    try:
        assert handle.cursors
        assert positioned(handle.cursors) == []
    finally:
        storage.abort_user_transaction(handle)


@pytest.mark.usefixtures("shipped_transactions")
def test_as_shipped_a_transaction_between_statements_holds_its_last_row(
    storage: Storage,
) -> None:
    """The control: as shipped the read's cursor stays on its row (and its page)
    until the transaction's next statement (if SecantusDB one day lets go by
    itself, this fails and the patch can go)."""
    handle = one_statement(storage)
    try:
        assert positioned(handle.cursors) != []
    finally:
        storage.abort_user_transaction(handle)


@pytest.mark.usefixtures("shipped_transactions")
def test_transactions_keep_their_snapshot_and_their_writes(storage: Storage) -> None:
    assert mongoserver.patch_transaction_cursors()
    handle = one_statement(storage)
    try:
        with storage.use_user_transaction(handle):
            storage.update_matching("d", "c", {"_id": 1}, {"$set": {"v": 1}})
        storage.update_matching("d", "c", {"_id": 2}, {"$set": {"v": 5}})  # committed outside
        with storage.use_user_transaction(handle):
            seen = {d["_id"]: d["v"] for d in storage.find_matching("d", "c", {})}
        assert seen == {0: 0, 1: 1, 2: 0, 3: 0, 4: 0}  # its own write; not the later one
        storage.commit_user_transaction(handle)
    except BaseException:
        storage.abort_user_transaction(handle)
        raise
    assert {d["_id"]: d["v"] for d in storage.find_matching("d", "c", {})} == {
        0: 0,
        1: 1,
        2: 5,
        3: 0,
        4: 0,
    }


@pytest.mark.usefixtures("shipped_transactions")
def test_installing_the_cursor_release_twice_wraps_once() -> None:
    assert mongoserver.patch_transaction_cursors()
    once = Storage.use_user_transaction
    assert mongoserver.patch_transaction_cursors()
    assert Storage.use_user_transaction is once


@pytest.fixture
def server(shipped_transactions: None, secantus_server: SecantusDBServer) -> SecantusDBServer:
    assert mongoserver.patch_transaction_cursors()
    return secantus_server


def test_transactions_through_the_server(server: SecantusDBServer) -> None:
    client = MongoClient[Doc](f"mongodb://127.0.0.1:{server.port}/?directConnection=true")
    rows = client["t"]["rows"]
    rows.insert_many([{"_id": n, "v": 0} for n in range(3)])
    with client.start_session() as session, session.start_transaction():
        assert rows.find_one({"_id": 1}, session=session) == {"_id": 1, "v": 0}
        rows.update_one({"_id": 1}, {"$set": {"v": 1}}, session=session)
        rows.update_one({"_id": 2}, {"$set": {"v": 5}})  # another client, committed at once
        assert rows.find_one({"_id": 1}, session=session) == {"_id": 1, "v": 1}
        assert rows.find_one({"_id": 2}, session=session) == {"_id": 2, "v": 0}
        rows.insert_one({"_id": 9, "v": 9}, session=session)
        assert rows.find_one({"_id": 9}) is None  # not yet committed
    assert {d["_id"]: d["v"] for d in rows.find()} == {0: 0, 1: 1, 2: 5, 9: 9}
    with client.start_session() as session:
        session.start_transaction()
        rows.update_one({"_id": 0}, {"$set": {"v": 7}}, session=session)
        session.abort_transaction()  # the client gives up
    assert rows.find_one({"_id": 0}) == {"_id": 0, "v": 0}
