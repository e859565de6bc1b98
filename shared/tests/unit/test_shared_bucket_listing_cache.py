"""The local S3 server reuses a listing only until something under the listed
folder changes: a listing asked for after a write or a delete was answered always
shows it (the broker reads a partition's new batch right after writing it)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from minio import Minio
from opr_shared.bucketserver import LISTINGS, PrefixListingHandler


class Handler(PrefixListingHandler):
    def log_message(self, *args: Any) -> None:  # quiet
        return None


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[Minio]:
    (tmp_path / "tansu").mkdir()
    Handler.data_root = tmp_path
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield Minio(f"127.0.0.1:{port}", "key", "secret", secure=False, region="us-east-1")
    finally:
        server.shutdown()
        server.server_close()


def put(s3: Minio, key: str) -> None:
    s3.put_object("tansu", key, io.BytesIO(key.encode()), len(key))


def listed(s3: Minio, prefix: str) -> list[str]:
    return [o.object_name for o in s3.list_objects("tansu", prefix=prefix, recursive=True)]


def test_writes_and_deletes_show_in_the_next_listing(s3: Minio) -> None:
    records = "topics/a/partitions/0/records/"
    put(s3, records + "0000.batch")
    assert listed(s3, records) == [records + "0000.batch"]
    assert listed(s3, records) == [records + "0000.batch"]  # unchanged: reused
    folder = Handler.data_root / "tansu" / records.rstrip("/")
    kept = [request for where, request in LISTINGS._answers if where == folder]
    assert kept, "the listing was not kept"
    assert all(LISTINGS.get(folder, request) is not None for request in kept)
    put(s3, records + "0001.batch")
    assert all(LISTINGS.get(folder, request) is None for request in kept)  # outdated now
    for n in range(1, 30):  # each write is seen by the listing straight after it
        put(s3, f"{records}{n:04d}.batch")
        assert listed(s3, records)[-1] == f"{records}{n:04d}.batch"
    s3.remove_object("tansu", records + "0005.batch")
    assert records + "0005.batch" not in listed(s3, records)
    assert len(listed(s3, records)) == 29


def test_a_write_deep_in_a_folder_changes_the_listings_above_it(s3: Minio) -> None:
    put(s3, "topics/b/partitions/0/records/0000.batch")
    assert listed(s3, "topics/") == ["topics/b/partitions/0/records/0000.batch"]
    put(s3, "topics/b/partitions/1/records/0000.batch")
    assert listed(s3, "topics/") == [
        "topics/b/partitions/0/records/0000.batch",
        "topics/b/partitions/1/records/0000.batch",
    ]
    # A sibling folder's write leaves this listing's answer valid, and right.
    put(s3, "groups/g.json")
    assert len(listed(s3, "topics/")) == 2


def test_pages_of_a_long_listing_stay_consistent(s3: Minio) -> None:
    records = "topics/c/partitions/0/records/"
    (Handler.data_root / "tansu" / records).mkdir(parents=True, exist_ok=True)
    for n in range(1200):  # more than one page of 1,000
        path = Handler.data_root / "tansu" / f"{records}{n:05d}.batch"
        path.write_bytes(b"x")
    # Files written behind the server's back are not followed; the first listing
    # after them is computed afresh because nothing was cached for this folder.
    first = listed(s3, records)
    assert len(first) == 1200
    put(s3, f"{records}01200.batch")
    again = listed(s3, records)
    assert len(again) == 1201
    assert again == sorted(again)


def test_if_match_makes_concurrent_read_modify_writes_lose_nothing(s3: Minio) -> None:
    """What the broker does to reserve offsets: read a counter and its ETag, write it
    back with If-Match, try again on 412. Every increment must survive."""
    import http.client
    import json

    port = int(s3._base_url.host.rsplit(":", 1)[1])
    path = "/tansu/topics/d/partitions/0/watermark.json"

    def request(method: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, (response.getheader("ETag"), response.read())
        finally:
            connection.close()

    status, _ = request("PUT", {}, json.dumps({"high": 0}).encode())
    assert status == 200

    refused = []

    def increment(times: int) -> None:
        for _ in range(times):
            while True:
                _, (etag, body) = request("GET", {})
                value = json.loads(body)["high"] + 1
                status, _ = request("PUT", {"If-Match": etag}, json.dumps({"high": value}).encode())
                if status == 200:
                    break
                assert status == 412
                refused.append(1)

    threads = [threading.Thread(target=increment, args=(25,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _, (_, body) = request("GET", {})
    assert json.loads(body)["high"] == 150
    status, _ = request("PUT", {"If-Match": '"not-the-etag"'}, b"{}")
    assert status == 412


def test_delete_objects_removes_every_named_object_and_listings_follow(s3: Minio) -> None:
    """DeleteObjects, as the broker sends it for a deleted topic's batches."""
    from minio.deleteobjects import DeleteObject

    records = "topics/gone/partitions/0/records/"
    kept = "topics/kept/partitions/0/records/0000.batch"
    for n in range(5):
        put(s3, f"{records}{n:04d}.batch")
    put(s3, kept)
    assert len(listed(s3, records)) == 5  # a listing kept for reuse

    errors = list(
        s3.remove_objects(
            "tansu",
            [DeleteObject(f"{records}{n:04d}.batch") for n in range(5)]
            + [DeleteObject("topics/never-written.json")],
        )
    )

    assert errors == []
    assert listed(s3, records) == []
    assert listed(s3, "topics/") == [kept]
    # The emptied folders are gone too, as after single deletes.
    assert not (Handler.data_root / "tansu" / "topics" / "gone").exists()


def test_delete_objects_reports_a_key_it_cannot_hold_and_deletes_the_rest(s3: Minio) -> None:
    from minio.deleteobjects import DeleteObject

    put(s3, "a/one.json")
    errors = list(s3.remove_objects("tansu", [DeleteObject("a/../x"), DeleteObject("a/one.json")]))

    assert [(e.name, e.code) for e in errors] == [("a/../x", "InvalidArgument")]
    assert listed(s3, "a/") == []
