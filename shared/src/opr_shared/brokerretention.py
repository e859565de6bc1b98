"""Retention for the local Kafka broker: record batches every consumer group has read
are deleted from its storage.

The local broker (Tansu) keeps each produced batch as an object under
``clusters/<cluster>/topics/<topic>/partitions/<partition>/records/<offset>.batch``
and never deletes one (its object-store engine has no retention, nor DeleteRecords).
It lists a partition's whole ``records/`` folder on every read that finds new
records, so each read costs more with every batch ever produced to the partition,
and a whole intake costs the square of its size. Real Kafka deletes old segments
(``retention.ms``); this does the same for what is surely no longer needed.

A batch is deleted when all of these hold:

- its topic is not a dead-letter topic (``*.dlq``: they are read from the start);
- every consumer group of the topic has committed an offset on the partition, and
  the lowest of them is at or past the start of the next batch (every record of
  this one was read by every group). The groups of a topic are those with an
  offset committed on any of its partitions and those whose current members
  subscribe to it (read from the broker's group records), so a group that has
  joined but not committed yet holds the partition back;
- it is not the partition's last batch, and it was written more than
  ``keep_seconds`` ago (a group that has never run is not known: whatever it would
  have read from the start within that time is still there).

If any group record cannot be read as a consumer group, nothing is deleted. A
consumer that asks for an offset whose batch is gone is given the next batch,
as Kafka gives the log's start after retention. ListOffsets still answers 0 for
the earliest offset (the broker's low watermark is its own).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

BATCH_SUFFIX = ".batch"
DEAD_LETTER_SUFFIX = ".dlq"


class UnreadableGroup(ValueError):
    """A group record that does not read as a Kafka consumer group's."""


def subscribed_topics(metadata: bytes) -> list[str]:
    """The topics named by a consumer's subscription (the ``consumer`` protocol's
    member metadata: a version, then an array of topic names)."""
    try:
        (_version, count) = struct.unpack_from(">hi", metadata, 0)
        at = 6
        topics = []
        for _ in range(count):
            (length,) = struct.unpack_from(">h", metadata, at)
            at += 2
            if length < 0 or at + length > len(metadata):
                raise UnreadableGroup("a topic name runs past the metadata")
            topics.append(metadata[at : at + length].decode())
            at += length
    except (struct.error, UnicodeDecodeError) as exc:
        raise UnreadableGroup(str(exc)) from exc
    if count < 0:
        raise UnreadableGroup("a negative topic count")
    return topics


def members_topics(record: dict[str, object]) -> set[str]:
    """Every topic the current members of a group (the broker's group record) subscribe to."""
    members = record.get("members", {})
    if not isinstance(members, dict):
        raise UnreadableGroup("members is not a map")
    topics: set[str] = set()
    for member in members.values():
        joined = member.get("join_response") if isinstance(member, dict) else None
        metadata = joined.get("metadata") if isinstance(joined, dict) else None
        if not isinstance(metadata, list) or not all(isinstance(b, int) for b in metadata):
            raise UnreadableGroup("a member without subscription metadata")
        topics.update(subscribed_topics(bytes(metadata)))
    return topics


@dataclass(frozen=True)
class Batch:
    offset: int
    path: Path
    written_at: float


class ConsumedBatchPruner:
    """Deletes the record batches of one broker's storage that every group has read
    (see the module). ``delete`` removes one object's file as the storage server
    would for a DeleteObject, keeping its listings current."""

    def __init__(
        self,
        bucket_dir: Path,
        delete: Callable[[Path], None],
        *,
        keep_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bucket_dir = bucket_dir
        self.delete = delete
        self.keep_seconds = keep_seconds
        self.clock = clock

    def prune_once(self) -> int:
        """Delete what may be deleted now; answer how many batches went."""
        deleted = 0
        for cluster in _folders(self.bucket_dir / "clusters"):
            try:
                committed, topics_of_groups = self._groups(cluster)
            except UnreadableGroup as exc:
                log.warning("broker retention skipped: a group record is unreadable (%s)", exc)
                continue
            for topic_dir in _folders(cluster / "topics"):
                topic = topic_dir.name
                if topic.endswith(DEAD_LETTER_SUFFIX):
                    continue
                groups = {g for g, topics in topics_of_groups.items() if topic in topics}
                groups |= {g for (g, t, _p) in committed if t == topic}
                if not groups:
                    continue
                for partition_dir in _folders(topic_dir / "partitions"):
                    offsets = [committed.get((g, topic, partition_dir.name)) for g in groups]
                    if any(offset is None for offset in offsets):
                        continue
                    read_by_all = min(o for o in offsets if o is not None)
                    deleted += self._prune_partition(partition_dir / "records", read_by_all)
        return deleted

    def _groups(self, cluster: Path) -> tuple[dict[tuple[str, str, str], int], dict[str, set[str]]]:
        """Committed offsets by (group, topic, partition folder), and the topics each
        group's current members subscribe to."""
        consumers = cluster / "groups" / "consumers"
        committed: dict[tuple[str, str, str], int] = {}
        topics: dict[str, set[str]] = {}
        pending: set[tuple[str, str]] = set()  # groups of a topic with nothing committed yet
        for entry in _entries(consumers):
            if entry.is_file() and entry.name.endswith(".json"):
                try:
                    record = json.loads(entry.read_bytes())
                except (OSError, ValueError) as exc:
                    raise UnreadableGroup(f"{entry.name}: {exc}") from exc
                if not isinstance(record, dict):
                    raise UnreadableGroup(f"{entry.name}: not an object")
                name = entry.name.removesuffix(".json")
                topics.setdefault(name, set()).update(members_topics(record))
            elif entry.is_dir():
                group = entry.name
                for topic_dir in _folders(entry / "offsets"):
                    for offset_file in _entries(topic_dir / "partitions"):
                        offset = _committed_offset(offset_file)
                        partition = offset_file.name.removesuffix(".json")
                        if offset is not None:
                            committed[(group, topic_dir.name, partition)] = offset
                        else:
                            pending.add((group, topic_dir.name))
        for group, topic in pending:
            topics.setdefault(group, set()).add(topic)
        return committed, topics

    def _prune_partition(self, records: Path, read_by_all: int) -> int:
        batches: list[Batch] = []
        for entry in _entries(records):
            name = entry.name
            if not name.endswith(BATCH_SUFFIX) or not name[: -len(BATCH_SUFFIX)].isdigit():
                continue
            try:
                written_at = entry.stat().st_mtime
            except FileNotFoundError:
                continue
            batches.append(Batch(int(name[: -len(BATCH_SUFFIX)]), entry, written_at))
        batches.sort(key=lambda b: b.offset)
        old_enough = self.clock() - self.keep_seconds
        deleted = 0
        for batch, following in itertools.pairwise(batches):
            if following.offset > read_by_all:
                break  # this batch holds a record some group has not read
            if batch.written_at > old_enough:
                break
            self.delete(batch.path)
            deleted += 1
        return deleted

    def run(self, stop: threading.Event, every_seconds: float = 10.0) -> None:
        """Prune every ``every_seconds`` until ``stop`` is set; a failed round is
        logged and the next one tried."""
        while not stop.wait(every_seconds):
            try:
                self.prune_once()
            except Exception:
                log.exception("broker retention round failed")


def _committed_offset(path: Path) -> int | None:
    """The offset committed in ``path`` (None: nothing committed yet)."""
    if not path.name.endswith(".json"):
        return None
    try:
        record = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UnreadableGroup(f"{path.name}: {exc}") from exc
    offset = record.get("offset") if isinstance(record, dict) else None
    if not isinstance(offset, int):
        raise UnreadableGroup(f"{path.name}: no offset")
    return offset if offset >= 0 else None


def _entries(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as found:
            return [Path(entry.path) for entry in found if not entry.name.startswith(".")]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _folders(folder: Path) -> list[Path]:
    return [entry for entry in _entries(folder) if entry.is_dir()]
