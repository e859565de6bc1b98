"""The local S3 server's prefix listing gives exactly localbucket's own listing (every
page, common prefix and continuation marker) while walking only the prefix's folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from localbucket import TEMP_PREFIX, S3Handler
from opr_shared.bucketserver import PrefixListingHandler, keys_under, list_page, listing_root

SEGMENT = st.sampled_from(["a", "b", "ab", "topics", "0000", "0001", "x.json", "é"])
KEY = st.lists(SEGMENT, min_size=1, max_size=4).map("/".join)
PREFIX = st.one_of(
    st.just(""),
    KEY,
    KEY.map(lambda k: k + "/"),
    KEY.map(lambda k: k[:-1]),
    st.just("../"),
    st.just("/abs/"),
)


def store(root: Path, keys: list[str]) -> None:
    for key in keys:
        path = root.joinpath(*key.split("/"))
        if path.parent.is_file() or path.is_dir():
            continue  # a key cannot be both a folder and an object on disk
        if any(p.is_file() for p in path.parents if root in p.parents):
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(key.encode())


def localbucket_listing(root: Path, *args: object) -> object:
    # The original method only uses its arguments.
    return S3Handler._list_entries(None, root, *args)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(KEY, max_size=25),
    prefix=PREFIX,
    delimiter=st.sampled_from(["", "/"]),
    marker=st.one_of(st.just(""), KEY),
    marker_is_prefix=st.booleans(),
    max_keys=st.sampled_from([0, 1, 2, 3, 1000]),
)
def test_the_same_page_as_localbucket(
    keys: list[str],
    prefix: str,
    delimiter: str,
    marker: str,
    marker_is_prefix: bool,
    max_keys: int,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store(root, keys)
        args = (prefix, delimiter, marker, marker_is_prefix, max_keys)
        assert list_page(root, *args) == localbucket_listing(root, *args)


def test_only_the_prefix_folder_is_walked(tmp_path: Path, monkeypatch: object) -> None:
    store(tmp_path, ["topics/a/0000/1", "topics/a/0000/2", "topics/b/0000/1", "other/x"])
    (tmp_path / "topics" / "a" / "0000" / f"{TEMP_PREFIX}upload").write_bytes(b"partial")
    walked: list[str] = []
    real_walk = os.walk

    def spy(top: Path) -> object:
        walked.append(Path(top).relative_to(tmp_path).as_posix())
        return real_walk(top)

    monkeypatch.setattr(os, "walk", spy)  # type: ignore[attr-defined]
    keys = [k for k, _ in keys_under(tmp_path, "topics/a/0000/")]
    assert keys == ["topics/a/0000/1", "topics/a/0000/2"]
    assert walked == ["topics/a/0000"]


def test_prefixes_that_are_not_folders_of_the_bucket_walk_the_bucket(tmp_path: Path) -> None:
    assert listing_root(tmp_path, "../../etc/") == tmp_path
    assert listing_root(tmp_path, "/etc/") == tmp_path
    assert listing_root(tmp_path, "") == tmp_path
    assert listing_root(tmp_path, "topics/a/00") == tmp_path / "topics" / "a"
    assert list_page(tmp_path, "../", "", "", False, 1000) == ([], [], False, "")


def test_the_server_uses_the_prefix_listing() -> None:
    assert issubclass(PrefixListingHandler, S3Handler)
    assert PrefixListingHandler._list_entries is not S3Handler._list_entries
