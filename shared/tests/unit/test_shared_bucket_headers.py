"""The local S3 server reads request headers without the ``email`` parser, to the
same message the standard library gives."""

from __future__ import annotations

import http.client
import io
import sys
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import localbucket
import pytest
from minio import Minio
from minio.error import S3Error
from opr_shared import bucketserver
from opr_shared.bucketserver import PrefixListingHandler, read_headers, use_quick_headers

BODY = b"the body that follows the headers"

TANSU_PUT = (
    b"host: 127.0.0.1:48423\r\n"
    b"user-agent: object_store/0.12.3\r\n"
    b"x-amz-date: 20261207T025000Z\r\n"
    b"x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n"
    b"authorization: AWS4-HMAC-SHA256 Credential=opr-abc/20261207/us-east-1/s3/aws4_request,"
    b" SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=0123456789abcdef\r\n"
    b'if-match: "d41d8cd98f00b204e9800998ecf8427e"\r\n'
    b"content-length: 33\r\n"
    b"\r\n"
)

CASES = {
    "a broker's conditional put": TANSU_PUT,
    "no headers": b"\r\n",
    "line feeds only": b"Host: a\nContent-Length: 33\n\n",
    "a header twice": b"X-A: one\r\nx-a: two\r\n\r\n",
    "blanks around a value": b"X-A:   spaced  \t\r\nX-B:\ttabbed\r\n\r\n",
    "an empty value": b"X-Empty:\r\nX-Next: n\r\n\r\n",
    "folded lines": b"X-Folded: first\r\n  second\r\n\tthird\r\nX-After: a\r\n\r\n",
    "a fold before any header": b" stray\r\nX-A: a\r\n\r\n",
    "a value with a colon": b"Host: 127.0.0.1:9000\r\nX-Url: http://a/b\r\n\r\n",
    "Latin-1 in a value": b"X-Name: caf\xe9\r\n\r\n",
    "a line with no name": b"X-A: a\r\n: nameless\r\n continued\r\nX-B: b\r\n\r\n",
    "a line that is no header": b"X-A: a\r\nnot a header\r\nX-B: b\r\n\r\n",
    "a space before the colon": b"X-A: a\r\nX-B : b\r\nX-C: c\r\n\r\n",
    "no blank line before the end": b"X-A: a\r\n",
}


@pytest.mark.parametrize("raw", CASES.values(), ids=CASES.keys())
def test_same_message_and_same_bytes_read_as_the_standard_library(raw: bytes) -> None:
    ours_fp, theirs_fp = io.BytesIO(raw + BODY), io.BytesIO(raw + BODY)
    ours = read_headers(ours_fp)
    theirs = http.client.parse_headers(theirs_fp)
    assert type(ours) is type(theirs)
    assert ours.items() == theirs.items()
    assert ours_fp.read() == theirs_fp.read()  # the body is left where it was


def test_headers_are_found_whatever_their_case() -> None:
    message = read_headers(io.BytesIO(TANSU_PUT))
    assert message.get("If-Match") == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert message["CONTENT-LENGTH"] == "33"
    assert "X-Amz-Date" in message
    assert message.get("Range") is None


def test_duplicates_are_all_kept_and_the_first_is_the_one_got() -> None:
    message = read_headers(io.BytesIO(CASES["a header twice"]))
    assert message.get("X-A") == "one"
    assert message.get_all("X-A") == ["one", "two"]


def test_a_folded_value_keeps_its_line_breaks() -> None:
    message = read_headers(io.BytesIO(CASES["folded lines"]))
    assert message["X-Folded"] == "first\r\n  second\r\n\tthird"


def test_the_limits_are_the_standard_librarys() -> None:
    assert getattr(http.client, "_MAXLINE") == bucketserver.MAX_HEADER_LINE  # noqa: B009
    assert getattr(http.client, "_MAXHEADERS") == bucketserver.MAX_HEADER_LINES  # noqa: B009


def test_too_long_a_line_is_refused_as_by_the_standard_library() -> None:
    raw = b"X-Long: " + b"a" * 70_000 + b"\r\n\r\n"
    with pytest.raises(http.client.LineTooLong):
        http.client.parse_headers(io.BytesIO(raw))
    with pytest.raises(http.client.LineTooLong):
        read_headers(io.BytesIO(raw))


def test_too_many_headers_are_refused_as_by_the_standard_library() -> None:
    raw = b"".join(b"X-%d: v\r\n" % n for n in range(101)) + b"\r\n"
    with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
        http.client.parse_headers(io.BytesIO(raw))
    with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
        read_headers(io.BytesIO(raw))
    exactly = b"".join(b"X-%d: v\r\n" % n for n in range(99)) + b"\r\n"
    assert len(read_headers(io.BytesIO(exactly))) == 99


@pytest.fixture
def quick_server(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "bucket").mkdir()
    shipped = http.client.parse_headers
    use_quick_headers()

    class Handler(PrefixListingHandler):
        data_root = tmp_path

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        http.client.parse_headers = shipped


def test_a_server_reading_headers_this_way_serves_s3_requests(quick_server: str) -> None:
    assert http.client.parse_headers is read_headers
    s3 = Minio(quick_server, "key", "secret", secure=False, region="us-east-1")
    s3.put_object("bucket", "a/k", io.BytesIO(b"body"), 4, metadata={"x-amz-meta-note": "n"})
    stored = s3.stat_object("bucket", "a/k")
    assert stored.size == 4
    assert s3.get_object("bucket", "a/k", offset=1, length=2).read() == b"od"  # Range read
    assert [o.object_name for o in s3.list_objects("bucket", prefix="a/")] == ["a/k"]
    with pytest.raises(S3Error) as missing:
        s3.stat_object("bucket", "a/missing")
    assert missing.value.code in {"NoSuchKey", "ResourceNotFound"}


def test_a_conditional_put_is_still_checked(quick_server: str) -> None:
    """The broker's If-Match comes through the quick reader to the check."""
    s3 = Minio(quick_server, "key", "secret", secure=False, region="us-east-1")
    s3.put_object("bucket", "w", io.BytesIO(b"v1"), 2)
    connection = http.client.HTTPConnection(quick_server)
    connection.request("PUT", "/bucket/w", body=b"v2", headers={"If-Match": '"not-its-etag"'})
    answer = connection.getresponse()
    answer.read()
    connection.close()
    assert answer.status == 412
    assert s3.get_object("bucket", "w").read() == b"v1"


def test_the_server_process_installs_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[object] = []
    monkeypatch.setattr(http.client, "parse_headers", http.client.parse_headers)
    monkeypatch.setattr(localbucket, "main", lambda: seen.append(http.client.parse_headers))
    monkeypatch.setattr(localbucket, "S3Handler", localbucket.S3Handler)
    monkeypatch.setattr(sys, "argv", ["bucketserver", "--port", "0", str(tmp_path)])
    bucketserver.main()
    assert seen == [read_headers]
