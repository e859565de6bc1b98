"""The local S3 server answers listings from an index of each listed folder, kept
current by its own writes and deletes: byte for byte what localbucket answers, and
without walking the folder again."""

from __future__ import annotations

import io
import os
import random
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from localbucket import S3Handler
from minio import Minio
from opr_shared import bucketserver
from opr_shared.bucketserver import INDEX, LISTINGS, PrefixListingHandler


class Ours(PrefixListingHandler):
    def log_message(self, *args: Any) -> None:
        return None


class Theirs(S3Handler):  # type: ignore[misc]
    def log_message(self, *args: Any) -> None:
        return None


def serve(handler: Any, root: Path) -> tuple[ThreadingHTTPServer, str]:
    handler.data_root = root
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[Minio, str, str]]:
    (tmp_path / "tansu").mkdir()
    ours, ours_at = serve(Ours, tmp_path)
    theirs, theirs_at = serve(Theirs, tmp_path)
    try:
        yield Minio(ours_at, "key", "secret", secure=False, region="us-east-1"), ours_at, theirs_at
    finally:
        for server in (ours, theirs):
            server.shutdown()
            server.server_close()


def put(s3: Minio, key: str, data: bytes | None = None) -> None:
    body = data if data is not None else key.encode()
    s3.put_object("tansu", key, io.BytesIO(body), len(body))


def raw_listing(at: str, query: dict[str, str]) -> bytes:
    with urllib.request.urlopen(f"http://{at}/tansu?{urlencode(query)}") as answer:
        body: bytes = answer.read()
    return body


RECORDS = "clusters/c/topics/t/partitions/0000000000/records/"
KEYS = [
    *(f"{RECORDS}{n:020d}.batch" for n in range(0, 30)),
    "clusters/c/topics/t/partitions/0000000000/watermark.json",
    "clusters/c/topics/t/partitions/0000000001/records/00000000000000000000.batch",
    "clusters/c/groups/consumers/notifier.json",
    "odd/a&b<c>/ünïcode key.json",
    "odd/a&b<c>/deeper/x",
]
QUERIES: list[dict[str, str]] = [
    {"list-type": "2", "prefix": RECORDS},
    {"list-type": "2", "prefix": RECORDS, "max-keys": "7"},
    {"list-type": "2", "prefix": RECORDS, "start-after": f"{RECORDS}{12:020d}.batch"},
    {"list-type": "2", "prefix": RECORDS + "0000000000000000001"},
    {"list-type": "2", "prefix": "clusters/c/topics/t/partitions/", "delimiter": "/"},
    {"list-type": "2", "prefix": "clusters/c/topics/t/"},
    {"list-type": "2", "prefix": "odd/a&b<c>/"},
    {"list-type": "2", "prefix": "odd/a&b<c>/", "encoding-type": "url"},
    {"list-type": "2", "prefix": "odd/", "delimiter": "/"},
    {"list-type": "2", "prefix": ""},
    {"list-type": "2", "prefix": "nothing/here/"},
    {"prefix": RECORDS, "max-keys": "5", "marker": f"{RECORDS}{3:020d}.batch"},
]


@pytest.fixture
def stocked(servers: tuple[Minio, str, str]) -> tuple[Minio, str, str]:
    """The servers, with every key of ``KEYS`` stored."""
    for key in KEYS:
        put(servers[0], key)
    return servers


def assert_same_answers(ours: str, theirs: str) -> None:
    for query in QUERIES:
        mine, reference = raw_listing(ours, query), raw_listing(theirs, query)
        assert mine == reference, query


def test_listings_are_byte_for_byte_localbuckets(stocked: tuple[Minio, str, str]) -> None:
    s3, ours, theirs = stocked
    assert_same_answers(ours, theirs)
    # Changes after the folders were indexed: new objects, a rewrite with other
    # content (size, ETag), deletes, including the last object of a folder.
    put(s3, f"{RECORDS}{30:020d}.batch")
    put(s3, f"{RECORDS}{3:020d}.batch", b"rewritten, longer than before")
    s3.remove_object("tansu", f"{RECORDS}{5:020d}.batch")
    s3.remove_object("tansu", "odd/a&b<c>/deeper/x")
    put(s3, "odd/a&b<c>/new")
    assert_same_answers(ours, theirs)
    # Pages joined through continuation tokens give every key once, in order.
    names = [o.object_name for o in s3.list_objects("tansu", prefix=RECORDS, recursive=True)]
    assert names == sorted(names)
    assert len(names) == 30


def test_an_indexed_folder_is_not_walked_again(
    stocked: tuple[Minio, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, ours, _ = stocked
    walks: list[str] = []
    real_walk = os.walk

    def spy(top: Any, *args: Any, **kwargs: Any) -> Any:
        walks.append(str(top))
        return real_walk(top, *args, **kwargs)

    monkeypatch.setattr(os, "walk", spy)
    query = {"list-type": "2", "prefix": RECORDS}
    raw_listing(ours, query)
    assert len(walks) == 1
    for n in range(31, 41):
        put(s3, f"{RECORDS}{n:020d}.batch")
        body = raw_listing(ours, query)
        assert f"{RECORDS}{n:020d}.batch".encode() in body  # each write seen at once
    s3.remove_object("tansu", f"{RECORDS}{31:020d}.batch")
    assert f"{RECORDS}{31:020d}.batch".encode() not in raw_listing(ours, query)
    assert len(walks) == 1, walks


def test_a_folder_that_changed_while_walked_is_not_kept(
    stocked: tuple[Minio, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ours, theirs = stocked
    folder_key = f"{RECORDS}{99:020d}.batch"
    real_keys_under = bucketserver.keys_under
    raced = False

    def racing(bucket_dir: Path, prefix: str) -> Any:
        nonlocal raced
        found = real_keys_under(bucket_dir, prefix)
        if not raced:
            # A write lands after the walk read the folder, before it is kept.
            raced = True
            target = bucket_dir.joinpath(*folder_key.split("/"))
            target.write_bytes(b"late")
            LISTINGS.changed(target, bucket_dir)  # as the server records a write
            INDEX.changed(target, bucket_dir)
        return found

    monkeypatch.setattr(bucketserver, "keys_under", racing)
    query = {"list-type": "2", "prefix": RECORDS}
    first = raw_listing(ours, query)
    assert folder_key.encode() not in first  # the walk's view, answered once
    second = raw_listing(ours, query)
    assert folder_key.encode() in second  # walked again, not served from a stale index
    assert second == raw_listing(theirs, query)


def test_a_delete_is_recorded_before_it_is_answered(
    stocked: tuple[Minio, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, ours, _ = stocked
    query = {"list-type": "2", "prefix": RECORDS}
    raw_listing(ours, query)  # indexed
    real_changed = INDEX.changed

    def slow(path: Path, bucket_dir: Path) -> None:
        time.sleep(0.3)  # bookkeeping that lags the answer would show now
        real_changed(path, bucket_dir)

    monkeypatch.setattr(INDEX, "changed", slow)
    gone = f"{RECORDS}{7:020d}.batch"
    s3.remove_object("tansu", gone)
    assert gone.encode() not in raw_listing(ours, query)


def test_listings_under_concurrent_writes_and_deletes_never_lag_or_fail(
    servers: tuple[Minio, str, str],
) -> None:
    """Writers check each write (and some deletes) in a listing right after it
    returns, while other clients list the same folders all along."""
    _, ours, _ = servers
    stop = time.monotonic() + 4
    problems: list[str] = []
    folders = [f"clusters/c/topics/t/partitions/{p:010d}/records/" for p in range(3)]

    def listing(folder: str) -> bytes:
        return raw_listing(ours, {"list-type": "2", "prefix": folder})

    def writer(number: int) -> None:
        s3 = Minio(ours, "key", "secret", secure=False, region="us-east-1")
        n = 0
        try:
            while time.monotonic() < stop:
                folder = folders[n % 3]
                key = f"{folder}{number:03d}{n:08d}.batch"
                n += 1
                s3.put_object("tansu", key, io.BytesIO(b"x" * 100), 100)
                if key.encode() not in listing(folder):
                    problems.append(f"missing after its write: {key}")
                if n % 7 == 0:
                    s3.remove_object("tansu", key)
                    if key.encode() in listing(folder):
                        problems.append(f"listed after its delete: {key}")
        except Exception as exc:  # a failed request is a finding, not a crash
            problems.append(f"writer: {exc!r}")

    def lister() -> None:
        n = 0
        try:
            while time.monotonic() < stop:
                listing(folders[n % 3])
                n += 1
        except Exception as exc:
            problems.append(f"lister: {exc!r}")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=lister) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == [], problems[:5]


def test_keys_written_out_of_order_and_deleted_are_listed_as_localbucket_lists_them(
    servers: tuple[Minio, str, str],
) -> None:
    """The index keeps its keys in order through writes in the middle, rewrites and
    deletes, and a listing starts after its marker wherever that falls."""
    s3, ours, theirs = servers
    rng = random.Random(7)
    names = [f"{RECORDS}{n:020d}.batch" for n in range(60)] + [
        f"{RECORDS}deeper/ü{n}" for n in range(5)
    ]
    stored: set[str] = set()
    for _ in range(6):
        for key in rng.sample(names, 15):
            if key in stored and rng.random() < 0.4:
                s3.remove_object("tansu", key)
                stored.discard(key)
            else:
                put(s3, key, rng.randbytes(rng.randint(1, 40)))
                stored.add(key)
        for marker in ["", RECORDS, RECORDS + "zzz", *rng.sample(names, 6)]:
            for query in (
                {"list-type": "2", "prefix": RECORDS},
                {"list-type": "2", "prefix": RECORDS, "max-keys": "4"},
                {"list-type": "2", "prefix": RECORDS + "0000000000000000003"},
                {"list-type": "2", "prefix": RECORDS, "delimiter": "/"},
            ):
                if marker:
                    query = {**query, "start-after": marker}
                assert raw_listing(ours, query) == raw_listing(theirs, query), query
    listed = [o.object_name for o in s3.list_objects("tansu", prefix=RECORDS, recursive=True)]
    assert listed == sorted(stored)
