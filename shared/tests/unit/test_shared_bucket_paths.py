"""The local S3 server finds a key's path as localbucket does, with each folder's
real path looked up once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import localbucket
import pytest
from opr_shared import bucketserver
from opr_shared.bucketserver import PrefixListingHandler, RealFolders

KEYS = [
    "k",
    "clusters/c/topics/t/partitions/0/watermark.json",
    "clusters/c/topics/t/partitions/0/records/00000000000000000012.batch",
    "photos/2026000001/6f1c",
    "not/yet/a/folder/k",
    "spaces in/a name",
    "unicode/文件",
]
REFUSED = ["a/../b", "../outside", "a//b", "a/", "./a", "a/./b", ".."]


def handler(root: Path) -> Any:
    made = object.__new__(PrefixListingHandler)
    made.data_root = root
    return made


def shipped(root: Path) -> Any:
    made = object.__new__(localbucket.S3Handler)
    made.data_root = root
    return made


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(bucketserver, "REAL_FOLDERS", RealFolders())
    (tmp_path / "data" / "bucket" / "clusters" / "c").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    return tmp_path / "data"


@pytest.mark.parametrize("key", KEYS)
def test_the_same_path_as_localbucket(root: Path, key: str) -> None:
    ours = handler(root)._object_path("bucket", key)
    assert ours == shipped(root)._object_path("bucket", key)
    assert ours == handler(root)._object_path("bucket", key)  # and again, remembered


@pytest.mark.parametrize("key", REFUSED)
def test_keys_localbucket_refuses_are_refused(root: Path, key: str) -> None:
    with pytest.raises(localbucket.S3Error) as ours:
        handler(root)._object_path("bucket", key)
    with pytest.raises(localbucket.S3Error) as theirs:
        shipped(root)._object_path("bucket", key)
    assert (ours.value.status, ours.value.code) == (theirs.value.status, theirs.value.code)


def test_a_missing_bucket_is_no_such_bucket(root: Path) -> None:
    with pytest.raises(localbucket.S3Error) as refused:
        handler(root)._object_path("nobucket", "k")
    assert refused.value.code == "NoSuchBucket"


def test_a_link_out_of_the_bucket_is_refused(root: Path) -> None:
    bucket = root / "bucket"
    os.symlink(root.parent / "outside", bucket / "out")
    os.symlink(root.parent / "outside" / "file", bucket / "clusters" / "linked")
    for key in ("out/k", "out/deeper/k", "clusters/linked"):
        with pytest.raises(localbucket.S3Error) as refused:
            handler(root)._object_path("bucket", key)
        assert refused.value.code == "InvalidArgument"


def test_a_link_within_the_bucket_leads_where_localbucket_goes(root: Path) -> None:
    bucket = root / "bucket"
    os.symlink(bucket / "clusters", bucket / "alias")
    os.symlink(bucket / "k", bucket / "clusters" / "file-link")
    for key in ("alias/c/k", "clusters/file-link"):
        ours = handler(root)._object_path("bucket", key)
        assert ours == shipped(root)._object_path("bucket", key)
        assert ours.is_relative_to(bucket)
        assert "alias" not in ours.parts
        assert "file-link" not in ours.parts


def test_a_folders_real_path_is_looked_up_once(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resolved: list[Path] = []
    resolve = Path.resolve

    def counted(self: Path, strict: bool = False) -> Path:
        resolved.append(self)
        return resolve(self, strict)

    monkeypatch.setattr(Path, "resolve", counted)
    ours = handler(root)
    for n in range(20):
        ours._object_path("bucket", f"clusters/c/topics/t/partitions/0/records/{n:020d}.batch")
    assert len(resolved) == 2  # the folder and the bucket, once
    resolved.clear()
    for n in range(5):
        shipped(root)._object_path("bucket", f"clusters/c/topics/t/partitions/0/records/{n}")
    assert len(resolved) == 10  # localbucket: the key and the bucket, each time


def test_the_remembered_folders_are_bounded(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folders = RealFolders()
    monkeypatch.setattr(RealFolders, "MAX_FOLDERS", 10)
    bucket = root / "bucket"
    for n in range(25):
        assert folders.inside(bucket, bucket / f"f{n}") == (bucket / f"f{n}").resolve()
    assert len(folders._real) <= 10
