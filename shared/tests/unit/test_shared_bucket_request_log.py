"""The local S3 server logs the requests it failed, not every request it served."""

from __future__ import annotations

import io
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from minio import Minio
from minio.error import S3Error
from opr_shared.bucketserver import PrefixListingHandler

LINES: list[str] = []


class Handler(PrefixListingHandler):
    def log_message(self, format: str, *args: Any) -> None:
        LINES.append(format % args)


@pytest.fixture
def at(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "bucket").mkdir()
    Handler.data_root = tmp_path
    LINES.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_served_and_not_found_requests_write_no_line(at: str) -> None:
    s3 = Minio(at, "key", "secret", secure=False, region="us-east-1")
    s3.put_object("bucket", "k", io.BytesIO(b"body"), 4)
    assert s3.get_object("bucket", "k").read() == b"body"
    assert [o.object_name for o in s3.list_objects("bucket")] == ["k"]
    with pytest.raises(S3Error):
        s3.stat_object("bucket", "missing")
    assert LINES == []


def test_a_request_the_server_cannot_serve_is_logged(at: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://{at}/bucket/k?torrent")
    assert refused.value.code == 501
    assert any("501" in line for line in LINES), LINES
