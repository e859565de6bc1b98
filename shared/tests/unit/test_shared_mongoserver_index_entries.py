"""An update on the local MongoDB rewrites only the index entries it changes, and
leaves every index (unique claims too) exactly as rewriting them all would."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opr_shared import mongoserver
from pymongo import MongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError
from secantus import SecantusDBServer
from secantus import storage as secantus_storage
from secantus.storage import Storage

Doc = dict[str, Any]
PATCHED = ("update_matching", "_delete_index_entries", "_write_index_entries")


@pytest.fixture
def rewritten() -> Iterator[Counter[str]]:
    """Index names whose entries were written, counted beneath the patch (as
    shipped: every index of every document an update changes)."""
    shipped = {name: Storage.__dict__[name] for name in PATCHED}
    written: Counter[str] = Counter()
    write = Storage._write_index_entries

    def counted(
        self: Any,
        db: str,
        coll: str,
        doc: Any,
        indexes: Any,
        partials: Any = None,
        *,
        recordid: int,
    ) -> None:
        written.update(name for name, *_ in indexes)
        write(self, db, coll, doc, indexes, partials, recordid=recordid)

    Storage._write_index_entries = counted
    try:
        yield written
    finally:
        for name, method in shipped.items():
            setattr(Storage, name, method)


@pytest.fixture
def start_server(
    start_secantus: Callable[[], SecantusDBServer],
) -> Iterator[Callable[[], SecantusDBServer]]:
    """Servers started before and after a test installs the patch; the shipped
    methods are back afterwards."""
    shipped = {name: Storage.__dict__[name] for name in PATCHED}
    try:
        yield start_secantus
    finally:
        for name, method in shipped.items():
            setattr(Storage, name, method)


def client_of(server: SecantusDBServer) -> MongoClient[Doc]:
    return MongoClient[Doc](f"mongodb://127.0.0.1:{server.port}/?directConnection=true")


def indexed(client: MongoClient[Doc]) -> Any:
    rows = client["t"]["rows"]
    rows.create_index("status")
    rows.create_index([("student", 1), ("status", 1)])
    rows.create_index("email", unique=True)
    rows.create_index("tags")
    rows.create_index("due", partialFilterExpression={"status": "pending"})
    rows.create_index("nick", sparse=True)
    rows.insert_many(
        [
            {
                "_id": n,
                "student": f"s{n % 3}",
                "status": "pending" if n % 2 else "sent",
                "email": f"e{n}@x",
                "tags": ["a", f"t{n}"],
                "due": n * 10,
                "note": "",
                **({"nick": f"n{n}"} if n % 4 == 0 else {}),
            }
            for n in range(10)
        ]
    )
    return rows


def the_updates(client: MongoClient[Doc]) -> None:
    """Every kind of update: none of the indexed fields, some, a whole replacement,
    multikey, partial and sparse entries arriving and leaving, unique values
    moving and refused, an upsert, a transaction rolled back and one committed."""
    rows = indexed(client)
    rows.update_one({"_id": 1}, {"$set": {"note": "seen"}})
    rows.update_one({"_id": 2}, {"$set": {"status": "pending", "note": "again"}})
    rows.update_one({"_id": 3}, {"$set": {"status": "sent"}})  # leaves the partial index
    rows.update_many({"status": "pending"}, {"$inc": {"due": 1}})
    rows.update_many({}, {"$set": {"student": "s9"}})
    rows.update_one({"_id": 4}, {"$push": {"tags": "new"}})
    rows.update_one({"_id": 5}, {"$pull": {"tags": "a"}})
    rows.update_one({"_id": 6}, {"$set": {"email": "moved@x"}})
    rows.insert_one({"_id": 60, "email": "e6@x"})  # the value given up is free again
    with pytest.raises(DuplicateKeyError):
        rows.update_one({"_id": 7}, {"$set": {"email": "moved@x", "note": "lost"}})
    rows.replace_one({"_id": 8}, {"status": "pending", "email": "e8@x", "tags": ["z"]})
    rows.find_one_and_update(
        {"_id": 9}, {"$set": {"nick": "nine"}}, return_document=ReturnDocument.AFTER
    )
    rows.update_one({"_id": 0}, {"$unset": {"nick": ""}})
    rows.update_one({"_id": 70}, {"$set": {"status": "pending", "due": 5}}, upsert=True)
    with client.start_session() as session:
        session.start_transaction()
        rows.update_one({"_id": 1}, {"$set": {"status": "sent"}}, session=session)
        rows.update_one({"_id": 2}, {"$set": {"note": "rolled back"}}, session=session)
        session.abort_transaction()
        with session.start_transaction():
            rows.update_one({"_id": 1}, {"$set": {"due": 99}}, session=session)
            rows.update_one({"_id": 1}, {"$set": {"note": "twice"}}, session=session)
            rows.update_many({"student": "s9"}, {"$set": {"note": "all"}}, session=session)


def stored(server: SecantusDBServer) -> dict[str, list[Any]]:
    """The collection's rows in the index-entry and unique-claim tables."""
    storage = server.storage
    tables = {
        "entries": secantus_storage._IDX_ENTRIES_TABLE,
        "unique": secantus_storage._UNIQ_TABLE,
    }
    with storage._lock:
        storage._refresh_read_snapshot()
        return {
            what: sorted(storage._collect_prefix(table, ("t", "rows")))
            for what, table in tables.items()
        }


def test_an_update_of_fields_no_index_covers_writes_no_index_entry(
    rewritten: Counter[str], secantus_server: SecantusDBServer
) -> None:
    assert mongoserver.patch_unchanged_index_entries()
    rows = indexed(client_of(secantus_server))
    rewritten.clear()
    rows.update_one({"_id": 1}, {"$set": {"note": "seen"}})
    rows.update_many({"status": "pending"}, {"$set": {"note": "all"}})
    assert rewritten == Counter()
    assert rows.count_documents({"note": "all"}) == 5


def test_an_update_rewrites_the_indexes_whose_entries_change_only(
    rewritten: Counter[str], secantus_server: SecantusDBServer
) -> None:
    assert mongoserver.patch_unchanged_index_entries()
    rows = indexed(client_of(secantus_server))
    rewritten.clear()
    rows.update_one({"_id": 1}, {"$set": {"status": "sent"}})  # and out of the partial index
    assert rewritten == Counter({"status_1": 1, "student_1_status_1": 1, "due_1": 1})
    assert [d["_id"] for d in rows.find({"status": "sent"}).hint("status_1")] == [0, 1, 2, 4, 6, 8]


def test_as_shipped_every_index_is_rewritten(
    rewritten: Counter[str], secantus_server: SecantusDBServer
) -> None:
    rows = indexed(client_of(secantus_server))
    rewritten.clear()
    rows.update_one({"_id": 1}, {"$set": {"note": "seen"}})
    assert rewritten == Counter(
        ["status_1", "student_1_status_1", "email_1", "tags_1", "due_1", "nick_1"]
    )


def test_the_indexes_end_as_rewriting_every_entry_leaves_them(
    start_server: Callable[[], SecantusDBServer],
) -> None:
    shipped = start_server()
    the_updates(client_of(shipped))
    expected = stored(shipped)

    assert mongoserver.patch_unchanged_index_entries()
    patched = start_server()
    client = client_of(patched)
    the_updates(client)

    assert stored(patched) == expected
    assert expected["entries"]
    assert expected["unique"]
    rows = client["t"]["rows"]
    assert rows.find_one({"email": "moved@x"}, hint="email_1") == rows.find_one({"_id": 6})
    assert rows.find_one({"_id": 7}, {"email": 1}) == {"_id": 7, "email": "e7@x"}
    assert [d["_id"] for d in rows.find({"tags": "new"}).hint("tags_1")] == [4]
    assert [d["_id"] for d in rows.find({"nick": {"$exists": True}}).hint("nick_1")] == [4, 9]
