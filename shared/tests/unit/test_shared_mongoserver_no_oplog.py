"""With ``--no-oplog`` the local MongoDB keeps no oplog, and its transactions work
as before: it still answers as a replica-set primary."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opr_shared import mongoserver
from opr_shared.devstack.stack import Stack, StackPorts
from opr_shared.localinfra import MONGODB, LocalInfra, Ports
from pymongo import MongoClient
from pymongo.errors import OperationFailure
from secantus import SecantusDBServer
from secantus.storage import Storage

Doc = dict[str, Any]


@pytest.fixture
def shipped_storage() -> Iterator[None]:
    shipped = Storage.__dict__["__init__"]
    try:
        yield
    finally:
        Storage.__init__ = shipped


@pytest.fixture
def start_server(
    shipped_storage: None, start_secantus: Callable[[], SecantusDBServer]
) -> Callable[[], SecantusDBServer]:
    return start_secantus


def client_of(server: SecantusDBServer) -> MongoClient[Doc]:
    return MongoClient[Doc](
        f"mongodb://127.0.0.1:{server.port}/?directConnection=true&retryWrites=false"
    )


def write_some(client: MongoClient[Doc]) -> None:
    rows = client["t"]["rows"]
    rows.insert_many([{"_id": n, "v": 0} for n in range(5)])
    with client.start_session() as session, session.start_transaction():
        rows.update_one({"_id": 1}, {"$set": {"v": 1}}, session=session)
        rows.insert_one({"_id": 9, "v": 9}, session=session)
    rows.delete_one({"_id": 4})


def oplog_entries(client: MongoClient[Doc]) -> int:
    return client["local"]["oplog.rs"].count_documents({"ns": "t.rows"})


def test_as_shipped_every_write_goes_into_the_oplog(
    start_server: Callable[[], SecantusDBServer],
) -> None:
    client = client_of(start_server())
    write_some(client)
    assert oplog_entries(client) == 8  # five inserts, an update, an insert, a delete


def test_without_an_oplog_writes_leave_no_entry(
    start_server: Callable[[], SecantusDBServer],
) -> None:
    assert mongoserver.patch_no_oplog()
    server = start_server()
    assert not server.storage.enable_oplog
    client = client_of(server)
    write_some(client)
    assert oplog_entries(client) == 0
    assert {d["_id"]: d["v"] for d in client["t"]["rows"].find()} == {0: 0, 1: 1, 2: 0, 3: 0, 9: 9}


def test_without_an_oplog_transactions_commit_abort_and_conflict_as_before(
    start_server: Callable[[], SecantusDBServer],
) -> None:
    assert mongoserver.patch_no_oplog()
    client = client_of(start_server())
    assert client.admin.command("hello")["setName"]  # drivers allow transactions
    rows = client["t"]["rows"]
    rows.insert_one({"_id": 1, "v": 0})
    with client.start_session() as session:
        session.start_transaction()
        rows.update_one({"_id": 1}, {"$set": {"v": 7}}, session=session)
        session.abort_transaction()
    assert rows.find_one({"_id": 1}) == {"_id": 1, "v": 0}
    first, second = client.start_session(), client.start_session()
    try:
        first.start_transaction()
        second.start_transaction()
        rows.update_one({"_id": 1}, {"$inc": {"v": 1}}, session=first)
        with pytest.raises(OperationFailure) as conflict:
            rows.update_one({"_id": 1}, {"$inc": {"v": 1}}, session=second)
        assert conflict.value.has_error_label("TransientTransactionError")
        first.commit_transaction()
    finally:
        first.end_session()
        second.end_session()
    assert rows.find_one({"_id": 1}) == {"_id": 1, "v": 1}


def test_installing_twice_wraps_once(shipped_storage: None) -> None:
    assert mongoserver.patch_no_oplog()
    once = Storage.__init__
    assert mongoserver.patch_no_oplog()
    assert Storage.__init__ is once


@pytest.fixture
def other_patches_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() without installing the other patches (tests elsewhere need SecantusDB as shipped)."""
    for name in dir(mongoserver):
        if name.startswith("patch_") and name != "patch_no_oplog":
            monkeypatch.setattr(mongoserver, name, lambda: True)


@pytest.mark.usefixtures("other_patches_left_out")
def test_the_flag_is_taken_out_before_secantus_reads_its_arguments(
    shipped_storage: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []

    def secantus_main(argv: list[str]) -> int:
        seen.append(argv)
        return 0

    monkeypatch.setattr("secantus.cli.main", secantus_main)
    assert mongoserver.main(["--port", "1", "--no-oplog", "--storage-path", "x"]) == 0
    assert seen == [["--port", "1", "--storage-path", "x"]]
    assert getattr(Storage.__init__, "opr_no_oplog", False)


@pytest.mark.usefixtures("other_patches_left_out")
def test_without_the_flag_the_oplog_is_kept(
    shipped_storage: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("secantus.cli.main", lambda argv: 0)
    assert mongoserver.main(["--port", "1"]) == 0
    assert not getattr(Storage.__init__, "opr_no_oplog", False)


def test_the_database_keeps_an_oplog_only_where_change_streams_are_wanted(
    tmp_path: Path,
) -> None:
    kept = LocalInfra(tmp_path / "a", Ports.free()).process(MONGODB).argv
    assert mongoserver.NO_OPLOG not in kept
    assert kept[kept.index("--oplog-max-entries") + 1] == "20000"
    none = LocalInfra(tmp_path / "b", Ports.free(), change_streams=False).process(MONGODB).argv
    assert mongoserver.NO_OPLOG in none
    assert "--oplog-max-entries" not in none


def test_the_local_stack_runs_its_database_without_an_oplog(tmp_path: Path) -> None:
    stack = Stack(tmp_path, StackPorts.free(("alpha",)), services=("alpha",))
    assert stack.infra is not None
    assert mongoserver.NO_OPLOG in stack.infra.process(MONGODB).argv
    # ...because no service of it watches the outbox with a change stream.
    assert stack.service_env("alpha")["OUTBOX_WATCH"] == "false"
