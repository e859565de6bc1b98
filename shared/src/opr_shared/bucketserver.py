"""The local S3 server (``localbucket``) with listings that read only the prefix's folder
and no Nagle delay on kept-alive connections.

localbucket lists a bucket by walking every file in it and then filtering by the
prefix. The local Kafka broker (Tansu) keeps each record batch as an object and
lists a partition's folder on every fetch, so with a walk of the whole bucket
each fetch grew with everything ever written to any topic: under an intake of a
few thousand students the broker's storage spent most of its CPU in ``os.walk``.

Keys are folders and file names, so every key starting with ``a/b/c`` lives
under the folder ``a/b``: walking that folder gives the same listing. Everything
else (the HTTP API, the storage layout) is localbucket's.

``python -m opr_shared.bucketserver [--host H] [--port P] DATA_ROOT`` takes
localbucket's arguments.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import localbucket
from localbucket import TEMP_PREFIX, S3Handler

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
    objects: list[Entry] = []
    prefixes: list[str] = []
    last = ""
    for key, path in keys_under(bucket_dir, prefix):
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

    def _list_entries(
        self,
        bucket_dir: Path,
        prefix: str,
        delimiter: str,
        marker: str,
        marker_is_prefix: bool,
        max_keys: int,
    ) -> tuple[list[Entry], list[str], bool, str]:
        return list_page(bucket_dir, prefix, delimiter, marker, marker_is_prefix, max_keys)


def main() -> None:
    # localbucket's own entry point serves whatever class its module calls S3Handler.
    localbucket.S3Handler = PrefixListingHandler
    localbucket.main()


if __name__ == "__main__":
    main()
