"""Retention of the local broker's storage: a record batch goes only once every
consumer group of its topic has read all of it, and it is old enough; the local
stack keeps read batches a minute unless told otherwise."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest
from opr_shared.brokerretention import (
    ConsumedBatchPruner,
    UnreadableGroup,
    members_topics,
    subscribed_topics,
)
from opr_shared.localinfra import (
    BROKER_STORAGE,
    KAFKA_RETENTION_ENV,
    InfraError,
    LocalInfra,
    Ports,
    kafka_retention_from_env,
)

NOW = 1_800_000_000.0
CLUSTER = "opr-local"


def subscription(*topics: str) -> list[int]:
    """A consumer's join metadata (consumer protocol v0) naming ``topics``."""
    data = struct.pack(">hi", 0, len(topics))
    for topic in topics:
        data += struct.pack(">h", len(topic)) + topic.encode()
    return list(data + struct.pack(">i", 0))


class Storage:
    """A broker bucket laid out as Tansu lays out its objects."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.deleted: list[str] = []

    def cluster(self) -> Path:
        return self.root / "clusters" / CLUSTER

    def batch(self, topic: str, partition: int, offset: int, age: float = 3600.0) -> None:
        path = self.partition(topic, partition) / "records" / f"{offset:020}.batch"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"batch")
        os.utime(path, (NOW - age, NOW - age))

    def partition(self, topic: str, partition: int) -> Path:
        return self.cluster() / "topics" / topic / "partitions" / f"{partition:010}"

    def commit(self, group: str, topic: str, partition: int, offset: int) -> None:
        path = (
            self.cluster()
            / "groups/consumers"
            / group
            / "offsets"
            / topic
            / "partitions"
            / f"{partition:010}.json"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"offset": offset, "leader_epoch": None, "metadata": ""}))

    def group(self, group: str, *subscribed: str) -> None:
        path = self.cluster() / "groups/consumers" / f"{group}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        members = {f"{group}-member": {"join_response": {"metadata": subscription(*subscribed)}}}
        path.write_text(json.dumps({"members": members, "state": {}}))

    def remaining(self, topic: str, partition: int) -> list[int]:
        records = self.partition(topic, partition) / "records"
        return sorted(int(p.name.split(".")[0]) for p in records.iterdir())

    def pruner(self, keep_seconds: float = 300.0) -> ConsumedBatchPruner:
        def delete(path: Path) -> None:
            self.deleted.append(path.name)
            path.unlink()

        return ConsumedBatchPruner(self.root, delete, keep_seconds=keep_seconds, clock=lambda: NOW)


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "tansu")


def test_the_subscribed_topics_are_read_from_a_members_join_metadata() -> None:
    assert subscribed_topics(bytes(subscription("identity.events", "card.events"))) == [
        "identity.events",
        "card.events",
    ]
    assert members_topics({"members": {}}) == set()
    with pytest.raises(UnreadableGroup):
        subscribed_topics(bytes(subscription("identity.events"))[:9])
    with pytest.raises(UnreadableGroup):
        members_topics({"members": {"m": {"join_response": {}}}})


def test_batches_every_group_has_read_go_and_the_rest_stay(storage: Storage) -> None:
    for offset in (0, 3, 5, 9):
        storage.batch("identity.events", 0, offset)
    storage.commit("registration", "identity.events", 0, 9)
    storage.commit("documents", "identity.events", 0, 5)

    assert storage.pruner().prune_once() == 2
    # 0-2 and 3-4 were read by both; documents has not read 5-8; 9 is the last batch.
    assert storage.remaining("identity.events", 0) == [5, 9]

    storage.commit("documents", "identity.events", 0, 12)
    assert storage.pruner().prune_once() == 1
    assert storage.remaining("identity.events", 0) == [9]  # the last batch always stays


def test_a_batch_read_to_its_middle_stays(storage: Storage) -> None:
    for offset in (0, 4, 8):
        storage.batch("card.events", 1, offset)
    storage.commit("notifier", "card.events", 1, 3)
    assert storage.pruner().prune_once() == 0
    storage.commit("notifier", "card.events", 1, 4)
    assert storage.pruner().prune_once() == 1
    assert storage.remaining("card.events", 1) == [4, 8]


def test_a_group_that_joined_but_has_not_committed_holds_the_partition(
    storage: Storage,
) -> None:
    for offset in (0, 1, 2):
        storage.batch("identity.events", 0, offset)
    storage.commit("registration", "identity.events", 0, 3)
    storage.group("card", "identity.events", "documents.events")
    assert storage.pruner().prune_once() == 0

    # A group that committed on another partition of the topic only holds this one too.
    storage.commit("card", "identity.events", 1, 7)
    assert storage.pruner().prune_once() == 0

    # Nothing committed yet (-1) is nothing read.
    storage.commit("card", "identity.events", 0, -1)
    assert storage.pruner().prune_once() == 0

    storage.commit("card", "identity.events", 0, 2)
    assert storage.pruner().prune_once() == 2
    assert storage.remaining("identity.events", 0) == [2]


def test_young_batches_dead_letters_and_unread_topics_stay(storage: Storage) -> None:
    storage.batch("identity.events", 0, 0, age=10)
    storage.batch("identity.events", 0, 1, age=10)
    storage.batch("identity.events.dlq", 0, 0)
    storage.batch("identity.events.dlq", 0, 1)
    storage.batch("nobody.events", 0, 0)
    storage.batch("nobody.events", 0, 1)
    for topic in ("identity.events", "identity.events.dlq"):
        storage.commit("registration", topic, 0, 2)

    assert storage.pruner(keep_seconds=60).prune_once() == 0
    assert storage.pruner(keep_seconds=5).prune_once() == 1
    assert storage.deleted == [f"{0:020}.batch"]
    assert storage.remaining("identity.events.dlq", 0) == [0, 1]
    assert storage.remaining("nobody.events", 0) == [0, 1]


def test_nothing_goes_while_a_group_record_cannot_be_read(storage: Storage) -> None:
    for offset in (0, 1, 2):
        storage.batch("identity.events", 0, offset)
    storage.commit("registration", "identity.events", 0, 3)
    broken = storage.cluster() / "groups/consumers/strange.json"
    broken.write_text('{"members": {"m": {"join_response": {"metadata": "not bytes"}}}}')
    assert storage.pruner().prune_once() == 0

    broken.unlink()
    odd_offset = storage.cluster() / "groups/consumers/odd/offsets/identity.events/partitions"
    odd_offset.mkdir(parents=True)
    (odd_offset / f"{0:010}.json").write_text("{not json")
    assert storage.pruner().prune_once() == 0

    (odd_offset / f"{0:010}.json").unlink()
    assert storage.pruner().prune_once() == 2


@pytest.mark.parametrize(
    ("raw", "seconds"), [("", 60.0), ("30", 30.0), ("0", 0.0), (" OFF ", None)]
)
def test_the_local_stack_keeps_read_batches_as_long_as_asked(
    raw: str, seconds: float | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert kafka_retention_from_env({KAFKA_RETENTION_ENV: raw}) == seconds
    monkeypatch.setenv(KAFKA_RETENTION_ENV, raw)
    infra = LocalInfra(tmp_path, Ports.free())
    argv = infra.process(BROKER_STORAGE).argv
    if seconds is None:
        assert "--kafka-retention" not in argv
    else:
        at = argv.index("--kafka-retention")
        assert Path(argv[at + 1]) == infra.data_dir / "broker-storage" / "tansu"
        assert float(argv[argv.index("--kafka-retention-keep-seconds") + 1]) == seconds


@pytest.mark.parametrize("raw", ["-5", "soon", "nan"])
def test_a_retention_that_is_no_duration_is_refused(raw: str) -> None:
    with pytest.raises(InfraError, match=KAFKA_RETENTION_ENV):
        kafka_retention_from_env({KAFKA_RETENTION_ENV: raw})
