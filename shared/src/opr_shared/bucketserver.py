"""The local S3 server (``localbucket``) with what the local Kafka broker needs of it:
``If-Match`` honoured on PutObject (localbucket ignores it), listings that read
only the prefix's folder, answered from an index of that folder kept current by
the server's own writes (and reused whole until the folder changes), and no
Nagle delay on kept-alive connections.

The broker (Tansu) reserves offsets by rewriting a partition's ``watermark.json``
with ``If-Match``. Without the check two concurrent produces to one partition
could both win, take the same offset, and leave a gap that stopped every
consumer of the partition.

localbucket lists a bucket by walking every file in it and then filtering by the
prefix. The local Kafka broker (Tansu) keeps each record batch as an object and
lists a partition's folder on every fetch, so with a walk of the whole bucket
each fetch grew with everything ever written to any topic: under an intake of a
few thousand students the broker's storage spent most of its CPU in ``os.walk``.

It also answers DeleteObjects (``POST /bucket?delete``), which localbucket
refuses as not implemented: the broker deletes a topic's objects that way, and
a deleted topic's data otherwise stayed behind, with an error in its log.

Request headers are read without the ``email`` package's parser, which
http.server hands them to: that parser took a fifth of this server's CPU under
an intake, for the dozen plain headers each of the broker's requests carries.
And a key's folder has its real path looked up once, not on every request
(:class:`RealFolders`).

Keys are folders and file names, so every key starting with ``a/b/c`` lives
under the folder ``a/b``: walking that folder gives the same listing. Everything
else (the HTTP API, the storage layout) is localbucket's.

``python -m opr_shared.bucketserver [--host H] [--port P] DATA_ROOT`` takes
localbucket's arguments; ``--kafka-retention BUCKET_DIR`` (the broker's bucket
folder) also deletes the broker's record batches every consumer group has read
(:mod:`opr_shared.brokerretention`), kept ``--kafka-retention-keep-seconds``
(60) at least.
"""

from __future__ import annotations

import argparse
import bisect
import http.client
import os
import re
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from http import HTTPStatus
from pathlib import Path, PurePosixPath
from typing import Any
from xml.sax.saxutils import escape

import localbucket
from localbucket import TEMP_PREFIX, S3Handler, etag_matches, iso_timestamp, object_etag

Entry = tuple[str, Path]


def listing_root(bucket_dir: Path, prefix: str) -> Path:
    """The deepest folder holding every key that starts with ``prefix``."""
    head = prefix.rpartition("/")[0]
    folder = PurePosixPath(head)
    if head.startswith("/") or ".." in folder.parts:
        return bucket_dir  # not a key folder: walk it all (the prefix then matches nothing)
    return bucket_dir.joinpath(*folder.parts)


def keys_under(bucket_dir: Path, prefix: str) -> list[Entry]:
    """``(key, path)`` of every stored object whose key starts with ``prefix``, sorted as
    S3 sorts keys (by their UTF-8 bytes)."""
    found: list[Entry] = []
    for folder, _, names in os.walk(listing_root(bucket_dir, prefix)):
        for name in names:
            if name.startswith(TEMP_PREFIX):
                continue  # an upload still being written
            path = Path(folder, name)
            key = path.relative_to(bucket_dir).as_posix()
            if key.startswith(prefix):
                found.append((key, path))
    found.sort(key=lambda entry: entry[0].encode())
    return found


def list_page(
    bucket_dir: Path,
    prefix: str,
    delimiter: str,
    marker: str,
    marker_is_prefix: bool,
    max_keys: int,
) -> tuple[list[Entry], list[str], bool, str]:
    """One page of a listing: objects, common prefixes, truncated?, the last entry named
    (``K:<key>`` or ``P:<common prefix>``, what a continuation token carries)."""
    return page_of(
        keys_under(bucket_dir, prefix), prefix, delimiter, marker, marker_is_prefix, max_keys
    )


def page_of(
    entries: Iterable[Entry],
    prefix: str,
    delimiter: str,
    marker: str,
    marker_is_prefix: bool,
    max_keys: int,
) -> tuple[list[Entry], list[str], bool, str]:
    """:func:`list_page` over ``entries``: every key starting with ``prefix``, sorted."""
    objects: list[Entry] = []
    prefixes: list[str] = []
    last = ""
    for key, path in entries:
        if marker and (
            key.encode() <= marker.encode() or (marker_is_prefix and key.startswith(marker))
        ):
            continue
        rolled_up = ""
        if delimiter:
            cut = key.find(delimiter, len(prefix))
            if cut >= 0:
                rolled_up = key[: cut + len(delimiter)]
        if rolled_up and prefixes and prefixes[-1] == rolled_up:
            continue  # already named by this page's last common prefix
        if len(objects) + len(prefixes) >= max_keys:
            return objects, prefixes, max_keys > 0, last
        if rolled_up:
            prefixes.append(rolled_up)
            last = "P:" + rolled_up
        else:
            objects.append((key, path))
            last = "K:" + key
    return objects, prefixes, False, last


class ListingCache:
    """Answers to ListObjectsV2 requests, kept until something under the listed
    folder changes.

    The broker lists a partition's folder each time it reads it, and every consumer
    group reads every partition: without this each listing walked, stat-ed and
    serialised every record batch ever written to the partition, for every read.
    Each folder has a generation, raised (with its ancestors') when an object
    under it is written or deleted, before that request is answered; an answer is
    reused only while the generation it was computed under is current. Requests
    this does not follow per folder (POST: multipart uploads, multi-object
    deletes; bucket deletion) bump a global epoch, and no answer is kept or reused
    while one is under way.
    """

    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generations: dict[Path, int] = {}
        self._epoch = 0
        self._unfollowed_in_flight = 0
        self._answers: dict[tuple[Path, str], tuple[tuple[int, int], bytes]] = {}

    def state(self, folder: Path) -> tuple[int, int] | None:
        """The version a listing of ``folder`` is computed under (None: do not cache)."""
        with self._lock:
            if self._unfollowed_in_flight:
                return None
            return self._epoch, self._generations.get(folder, 0)

    def get(self, folder: Path, request: str) -> bytes | None:
        with self._lock:
            found = self._answers.get((folder, request))
            if found is None or self._unfollowed_in_flight:
                return None
            version, body = found
            if version != (self._epoch, self._generations.get(folder, 0)):
                return None
            return body

    def put(self, folder: Path, request: str, version: tuple[int, int], body: bytes) -> None:
        with self._lock:
            if len(self._answers) >= self.MAX_ENTRIES:
                self._answers.clear()
            self._answers[(folder, request)] = (version, body)

    def changed(self, path: Path, bucket_dir: Path) -> None:
        """An object at ``path`` was written or deleted: every folder holding it changed."""
        with self._lock:
            folder = path.parent
            while True:
                self._generations[folder] = self._generations.get(folder, 0) + 1
                if folder == bucket_dir or folder == folder.parent:
                    break
                folder = folder.parent

    def begin_unfollowed(self) -> None:
        with self._lock:
            self._unfollowed_in_flight += 1
            self._epoch += 1

    def end_unfollowed(self) -> None:
        with self._lock:
            self._unfollowed_in_flight -= 1
            self._epoch += 1


LISTINGS = ListingCache()


def entry_details(path: Path) -> bytes:
    """What a listing says of the object at ``path`` after its key, as localbucket
    renders it (last modified, ETag, size, storage class)."""
    stat = path.stat()
    return (
        f"<LastModified>{iso_timestamp(stat.st_mtime)}</LastModified>"
        f'<ETag>"{object_etag(path)}"</ETag>'
        f"<Size>{stat.st_size}</Size><StorageClass>STANDARD</StorageClass>"
    ).encode()


class _Folder:
    """One listed folder: key -> (path, what a listing says of it), and its keys
    encoded in the order S3 lists them (by their UTF-8 bytes).

    ``entries`` and ``order`` are replaced, never changed in place, so a listing
    keeps reading the view it took while writes and deletes go on. A write adds its
    key in place in the order (at the end, for the broker's ever higher offsets)
    rather than sorting the folder again: a partition holds a batch for every
    produce, and sorting thousands of keys for each one cost this server a third
    of its CPU in an intake of 8,000 students.
    """

    def __init__(self, entries: dict[str, tuple[Path, bytes]]) -> None:
        self.entries = entries
        self.order = sorted(key.encode() for key in entries)

    def set(self, key: str, path: Path, details: bytes | None) -> None:
        entries = dict(self.entries)
        encoded = key.encode()
        order = self.order
        if details is None:
            if entries.pop(key, None) is not None:
                at = bisect.bisect_left(order, encoded)
                order = order[:at] + order[at + 1 :]
        else:
            if key not in entries:
                if not order or order[-1] < encoded:
                    order = [*order, encoded]
                else:
                    order = list(order)
                    bisect.insort(order, encoded)
            entries[key] = (path, details)
        self.entries = entries
        self.order = order


Listed = tuple[list[bytes], dict[str, tuple[Path, bytes]]]


class ListingIndex:
    """The objects under each folder listed so far, with what a listing says of
    each, kept current by this server's own writes and deletes.

    The broker lists a partition's whole ``records/`` folder on each read and
    writes a new object there with each produce, so an answer kept by
    :class:`ListingCache` rarely outlives the next produce; walking the folder,
    stat-ing and rendering every batch again cost the broker's storage most of its
    CPU, growing with every record ever written. A folder is walked once; then each
    write or delete updates its one entry.

    A listing reads one consistent view of a folder (entries and what is said of
    them together), whatever writes and deletes happen while it is answered. A
    write or delete is recorded here before :class:`ListingCache` learns of it, so
    no answer computed from the older view is kept as current. A folder walked
    while something under it changed is not kept (its generation moved during the
    walk). Requests this does not follow (multipart uploads, multi-object deletes,
    bucket deletion) drop every folder, and none is used or kept while one is under
    way. The server is the only writer of its data folder.
    """

    MAX_FOLDERS = 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folders: dict[Path, _Folder] = {}
        self._generations: dict[Path, int] = {}
        self._unfollowed_in_flight = 0

    def entries(self, bucket_dir: Path, folder: Path) -> Listed:
        """The keys under ``folder``, encoded and sorted as S3 sorts them, and what a
        listing says of each key (with its path)."""
        with self._lock:
            known = self._folders.get(folder)
            if known is not None and not self._unfollowed_in_flight:
                return known.order, known.entries
            generation = self._generations.get(folder, 0)
            keep = not self._unfollowed_in_flight
        walked: dict[str, tuple[Path, bytes]] = {}
        for key, path in keys_under(bucket_dir, folder.relative_to(bucket_dir).as_posix() + "/"):
            try:
                walked[key] = (path, entry_details(path))
            except FileNotFoundError:
                continue  # deleted since the walk saw it
        found = _Folder(walked)
        with self._lock:
            if (
                keep
                and not self._unfollowed_in_flight
                and self._generations.get(folder, 0) == generation
            ):
                if len(self._folders) >= self.MAX_FOLDERS:
                    self._folders.clear()
                self._folders[folder] = found
        return found.order, walked

    def changed(self, path: Path, bucket_dir: Path) -> None:
        """The object at ``path`` was written or deleted (after the fact)."""
        key = path.relative_to(bucket_dir).as_posix()
        with self._lock:
            holders = []
            for folder in _folders_holding(path, bucket_dir):
                self._generations[folder] = self._generations.get(folder, 0) + 1
                if folder in self._folders:
                    holders.append(self._folders[folder])
            if not holders:
                return
            try:
                details = entry_details(path) if path.is_file() else None
            except FileNotFoundError:
                details = None
            for known in holders:
                known.set(key, path, details)

    def begin_unfollowed(self) -> None:
        with self._lock:
            self._unfollowed_in_flight += 1
            self._folders.clear()

    def end_unfollowed(self) -> None:
        with self._lock:
            self._unfollowed_in_flight -= 1
            self._folders.clear()


def _folders_holding(path: Path, bucket_dir: Path) -> Iterable[Path]:
    folder = path.parent
    while True:
        yield folder
        if folder == bucket_dir or folder == folder.parent:
            return
        folder = folder.parent


INDEX = ListingIndex()


class RealFolders:
    """The real paths of the folders keys lie in, each found once.

    localbucket resolves every key's path (and its bucket's) on each request, to
    refuse a key that a symbolic link would lead out of its bucket: a ``stat``
    of every component of a path a dozen folders deep, two to six times per
    request, about a third of this server's CPU for the broker's small reads and
    writes. The server is the only writer of its data folder and makes only
    plain folders and files, so a folder's real path does not change while it
    runs (a folder deleted when emptied and made again is the same path). A
    folder whose real path lies outside its bucket is not remembered, and a key
    that is itself a link is resolved in full, as localbucket does.
    """

    MAX_FOLDERS = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._real: dict[Path, Path] = {}

    def inside(self, bucket_dir: Path, folder: Path) -> Path | None:
        """``folder``'s real path if it lies inside ``bucket_dir``'s, else None."""
        with self._lock:
            known = self._real.get(folder)
        if known is not None:
            return known
        real = folder.resolve()
        bucket_real = self._real.get(bucket_dir) or bucket_dir.resolve()
        if not real.is_relative_to(bucket_real):
            return None
        with self._lock:
            if len(self._real) >= self.MAX_FOLDERS:
                self._real.clear()
            self._real[folder] = real
            self._real[bucket_dir] = bucket_real
        return real


REAL_FOLDERS = RealFolders()


class KeyLocks:
    """Locks for object paths: a fixed set, each shared by the paths hashing to it."""

    def __init__(self, stripes: int = 256) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    def lock_for(self, path: Path) -> threading.Lock:
        return self._locks[hash(path) % len(self._locks)]


WRITES = KeyLocks()


class PrefixListingHandler(S3Handler):  # type: ignore[misc]
    """localbucket's handler, listing only the folder the prefix points into, and
    answering without Nagle's delay.

    The handler writes a response's headers and body in separate small writes. On
    a kept-alive connection Nagle's algorithm holds the body back until the client
    acknowledges the headers, and the client delays that acknowledgement: about
    40 ms per request. The broker reads a partition one object per request, so its
    consumers read some twenty records a second instead of hundreds.
    """

    disable_nagle_algorithm = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log a request only when the server failed it. The broker's every read and
        write otherwise cost a log line (about a twelfth of this server's CPU under
        an intake), and its 404s and 412s are how it asks what exists."""
        status = code.value if isinstance(code, HTTPStatus) else code
        if str(status).isdigit() and int(status) >= 500:
            super().log_request(code, size)

    def _list_entries(
        self,
        bucket_dir: Path,
        prefix: str,
        delimiter: str,
        marker: str,
        marker_is_prefix: bool,
        max_keys: int,
    ) -> tuple[list[Entry], list[str], bool, str]:
        folder = listing_root(bucket_dir, prefix)
        if folder == bucket_dir:
            # The whole bucket (or a prefix that is no folder of it): walked each time.
            self._listed = None
            return list_page(bucket_dir, prefix, delimiter, marker, marker_is_prefix, max_keys)
        order, listed = INDEX.entries(bucket_dir, folder)
        self._listed = listed
        # Keys starting with the prefix are one run of the sorted keys, and a page
        # starts after the marker: found by bisection, not by reading every key
        # before them (a partition's folder holds a batch for every produce).
        start = bisect.bisect_left(order, prefix.encode())
        if marker:
            start = max(start, bisect.bisect_right(order, marker.encode()))

        def from_start() -> Iterator[Entry]:
            for at in range(start, len(order)):
                key = order[at].decode()
                if not key.startswith(prefix):
                    return
                yield key, listed[key][0]

        return page_of(
            from_start(),
            prefix,
            delimiter,
            marker,
            marker_is_prefix,
            max_keys,
        )

    # The entries of a listing are rendered from the index's view, as text, and
    # spliced into the rest of the answer, which localbucket builds as before.
    _listed: dict[str, tuple[Path, bytes]] | None = None
    _entries_xml: bytes | None = None

    def _add_list_entries(
        self, root: ET.Element, contents: list[Entry], common_prefixes: list[str], encode: Any
    ) -> None:
        listed, self._listed = self._listed, None
        parts: list[bytes] = []
        for key, path in contents:
            known = listed.get(key) if listed is not None else None
            details = known[1] if known is not None else entry_details(path)
            parts.append(b"<Contents><Key>" + escape(encode(key)).encode() + b"</Key>")
            parts.append(details + b"</Contents>")
        for common in common_prefixes:
            parts.append(
                b"<CommonPrefixes><Prefix>"
                + escape(encode(common)).encode()
                + b"</Prefix></CommonPrefixes>"
            )
        self._entries_xml = b"".join(parts)

    # -- the listing cache ------------------------------------------------------

    _caching: tuple[Path, tuple[int, int]] | None = None

    def _list_objects_v2(self, bucket: str) -> None:
        bucket_dir = self._bucket_dir(bucket)
        folder = listing_root(bucket_dir, self.query.get("prefix", ""))
        cached = LISTINGS.get(folder, self.path)
        if cached is not None:
            self._send(HTTPStatus.OK, cached, {"Content-Type": "application/xml"})
            return
        version = LISTINGS.state(folder)
        self._caching = (folder, version) if version is not None else None
        try:
            super()._list_objects_v2(bucket)
        finally:
            self._caching = None

    def _send_xml(self, root: ET.Element) -> None:
        body = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
        entries, self._entries_xml = self._entries_xml, None
        if entries:
            closing = b"</" + root.tag.encode() + b">"
            if not body.endswith(closing):
                raise RuntimeError("a listing's answer does not end with its root element")
            body = body[: -len(closing)] + entries + closing
        if self._caching is not None:
            folder, version = self._caching
            LISTINGS.put(folder, self.path, version, body)
        self._send(HTTPStatus.OK, body, {"Content-Type": "application/xml"})

    def _write_object(self, bucket: str, key: str, write: Any) -> str:
        target = self._object_path(bucket, key)
        if_match = self.headers.get("If-Match")
        try:
            # Writes of one key one at a time, so a conditional write's check and
            # its replacement of the object are one step.
            with WRITES.lock_for(target):
                if if_match is not None and not (
                    target.is_file() and etag_matches(if_match, object_etag(target))
                ):
                    raise self._precondition_failed_error()
                etag: str = super()._write_object(bucket, key, write)
        finally:
            # The index first: an answer computed from its older view must not be
            # kept under the cache's new generation.
            INDEX.changed(target, self._bucket_dir(bucket))
            LISTINGS.changed(target, self._bucket_dir(bucket))
        return etag

    def _object_path(self, bucket: str, key: str) -> Path:
        """localbucket's path of a key, checked to lie inside the bucket with the
        real paths of folders remembered (see :class:`RealFolders`)."""
        parts = key.split("/")
        if key.endswith("/") or any(part in ("", ".", "..") for part in parts):
            return super()._object_path(bucket, key)  # type: ignore[no-any-return]  # refused
        bucket_dir = self._bucket_dir(bucket)
        folder = REAL_FOLDERS.inside(bucket_dir, bucket_dir.joinpath(*parts[:-1]))
        target = folder / parts[-1] if folder is not None else None
        if target is None or os.path.islink(target):
            return super()._object_path(bucket, key)  # type: ignore[no-any-return]
        return target

    def _get(self, bucket: str, key: str, include_body: bool) -> None:
        if not bucket or not key:
            super()._get(bucket, key, include_body)
            return
        # Not while the object is being replaced: the ETag sent must be the one of
        # the content sent, or a reader's If-Match could pass against newer content.
        with WRITES.lock_for(self._object_path(bucket, key)):
            super()._get(bucket, key, include_body)

    # localbucket's delete sends its answer itself: what the delete changed is
    # recorded just before that answer goes out, so a listing the client asks for
    # after it never shows the deleted object.
    _deleted: tuple[Path, Path] | None = None

    def _delete_object(self, bucket: str, key: str) -> None:
        self._deleted = (self._object_path(bucket, key), self._bucket_dir(bucket))
        try:
            super()._delete_object(bucket, key)
        finally:
            self._record_delete()

    def _send_headers(self, status: HTTPStatus, length: int, headers: Any = None) -> None:
        self._record_delete()
        super()._send_headers(status, length, headers)

    def _record_delete(self) -> None:
        if self._deleted is not None:
            target, bucket_dir = self._deleted
            self._deleted = None
            INDEX.changed(target, bucket_dir)
            LISTINGS.changed(target, bucket_dir)

    def do_POST(self) -> None:
        LISTINGS.begin_unfollowed()
        INDEX.begin_unfollowed()
        try:
            super().do_POST()
        finally:
            INDEX.end_unfollowed()
            LISTINGS.end_unfollowed()

    def _post_request(self, bucket: str, key: str) -> None:
        if bucket and not key and "delete" in self.query:
            self._check_query("DeleteObjects", {"delete"})
            self._delete_objects(bucket, self._read_body())
            return
        super()._post_request(bucket, key)

    def _delete_objects(self, bucket: str, body: bytes) -> None:
        """DeleteObjects: each key named is deleted as a DELETE of it would be (a
        missing object counts as deleted); a key this server cannot hold is
        reported in the answer, the others are deleted all the same."""
        bucket_dir = self._bucket_dir(bucket)
        try:
            # As localbucket parses CompleteMultipartUpload: a loopback server of
            # the local stack, and expat expands no external entities.
            request = ET.fromstring(body)  # noqa: S314
        except ET.ParseError:
            raise self._malformed_xml_error() from None
        quiet = any(
            _local(el.tag) == "Quiet" and (el.text or "").strip().lower() == "true"
            for el in request
        )
        keys = [
            (child.text or "")
            for el in request
            if _local(el.tag) == "Object"
            for child in el
            if _local(child.tag) == "Key"
        ]
        if not keys or len(keys) > MAX_DELETE_KEYS:
            raise self._malformed_xml_error()
        answer = ET.Element("DeleteResult", xmlns=localbucket.S3_NAMESPACE)
        for key in keys:
            try:
                target = self._object_path(bucket, key)
                with WRITES.lock_for(target):
                    _remove_object(target, bucket_dir.resolve())
                INDEX.changed(target, bucket_dir)
                LISTINGS.changed(target, bucket_dir)
            except localbucket.S3Error as error:
                failed = ET.SubElement(answer, "Error")
                ET.SubElement(failed, "Key").text = key
                ET.SubElement(failed, "Code").text = error.code
                ET.SubElement(failed, "Message").text = error.message
                continue
            if not quiet:
                ET.SubElement(ET.SubElement(answer, "Deleted"), "Key").text = key
        body = ET.tostring(answer, encoding="UTF-8", xml_declaration=True)
        self._send(HTTPStatus.OK, body, {"Content-Type": "application/xml"})

    def _delete_bucket(self, bucket: str) -> None:
        LISTINGS.begin_unfollowed()
        INDEX.begin_unfollowed()
        try:
            super()._delete_bucket(bucket)
        finally:
            INDEX.end_unfollowed()
            LISTINGS.end_unfollowed()


# What the ``email`` parser takes for a header line: a name of printable characters
# other than the colon, then the colon.
_HEADER_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]*:")
# http.client's limits: the longest header line, and the most lines with the blank one.
MAX_HEADER_LINE = 65536
MAX_HEADER_LINES = 100


def read_headers(
    fp: Any, _class: type[http.client.HTTPMessage] = http.client.HTTPMessage
) -> http.client.HTTPMessage:
    """``http.client.parse_headers`` without the ``email`` parser: the lines read
    under the same limits, and for well-formed headers the same message.

    As that parser does, a value is kept as sent but for the blanks after the colon
    and the line end, a folded line joins the value it continues (line breaks
    kept), a line with an empty name is dropped with the lines folded into it, and
    the headers end at the first line that is neither a header nor a continuation
    (the lines after it up to the blank line are read and dropped).
    """
    message = _class()
    name: str | None = None
    value: list[str] = []
    ended = False
    count = 0
    while True:
        raw = fp.readline(MAX_HEADER_LINE + 1)
        if len(raw) > MAX_HEADER_LINE:
            raise http.client.LineTooLong("header line")
        count += 1
        if count > MAX_HEADER_LINES:
            raise http.client.HTTPException(f"got more than {MAX_HEADER_LINES} headers")
        if raw in (b"\r\n", b"\n", b""):
            break
        if ended:
            continue
        line = raw.decode("iso-8859-1")
        if line[0] in " \t":
            if name is not None:
                value.append(line)
            continue
        found = _HEADER_NAME.match(line)
        if found is None:
            ended = True
            continue
        if name is not None:
            message.set_raw(name, "".join(value).rstrip("\r\n"))
        name = line[: found.end() - 1] or None  # a line with no name is dropped
        value = [line[found.end() :].lstrip(" \t")]
    if name is not None:
        message.set_raw(name, "".join(value).rstrip("\r\n"))
    return message


def use_quick_headers() -> None:
    """Read every request's headers with :func:`read_headers` in this process."""
    http.client.parse_headers = read_headers  # type: ignore[assignment]


# S3 takes at most 1,000 keys in one DeleteObjects request.
MAX_DELETE_KEYS = 1000


def _local(tag: str) -> str:
    """An XML tag without its namespace."""
    return tag.rpartition("}")[2]


def _remove_object(target: Path, bucket_dir: Path) -> None:
    """Delete an object's file, if there, and the folders it leaves empty (as
    localbucket's DeleteObject does)."""
    if not target.is_file():
        return
    target.unlink(missing_ok=True)
    parent = target.parent
    while parent != bucket_dir:
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent


def delete_object_file(target: Path, bucket_dir: Path) -> None:
    """Delete one object from inside the server, as a DeleteObject request would
    (listings stay current)."""
    with WRITES.lock_for(target):
        _remove_object(target, bucket_dir)
    INDEX.changed(target, bucket_dir)
    LISTINGS.changed(target, bucket_dir)


def start_kafka_retention(bucket_dir: Path, keep_seconds: float) -> threading.Event:
    """Delete, every ten seconds, the broker's record batches in ``bucket_dir`` that
    every consumer group has read (see :mod:`opr_shared.brokerretention`); set the
    answer to stop."""
    from opr_shared.brokerretention import ConsumedBatchPruner

    bucket_dir = bucket_dir.resolve()
    pruner = ConsumedBatchPruner(
        bucket_dir, lambda path: delete_object_file(path, bucket_dir), keep_seconds=keep_seconds
    )
    stop = threading.Event()
    threading.Thread(target=pruner.run, args=(stop,), name="kafka-retention", daemon=True).start()
    return stop


def main() -> None:
    ours = argparse.ArgumentParser(add_help=False)
    ours.add_argument("--kafka-retention", type=Path, metavar="BUCKET_DIR")
    ours.add_argument("--kafka-retention-keep-seconds", type=float, default=60.0)
    options, localbucket_args = ours.parse_known_args()
    sys.argv[1:] = localbucket_args
    if options.kafka_retention is not None:
        start_kafka_retention(options.kafka_retention, options.kafka_retention_keep_seconds)
    # localbucket's own entry point serves whatever class its module calls S3Handler.
    localbucket.S3Handler = PrefixListingHandler
    use_quick_headers()
    localbucket.main()


if __name__ == "__main__":
    main()
