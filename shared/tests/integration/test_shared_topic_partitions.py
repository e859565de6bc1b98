"""The topics a service creates on the broker (KAFKA_CREATE_TOPICS), and the
partitions the local stack has them created with."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from opr_shared.devstack.stack import LOCAL_KAFKA_TOPIC_PARTITIONS, Stack, StackPorts
from opr_shared.localinfra import Endpoints
from opr_shared.runtime import ServiceRuntime
from opr_shared.settings import ServiceSettings

pytestmark = pytest.mark.integration


def test_the_local_stack_asks_for_one_partition_a_topic_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_TOPIC_PARTITIONS", raising=False)
    stack = Stack(tmp_path, StackPorts.free(("alpha",)), services=("alpha",))
    assert stack.service_env("alpha")["KAFKA_TOPIC_PARTITIONS"] == LOCAL_KAFKA_TOPIC_PARTITIONS
    assert LOCAL_KAFKA_TOPIC_PARTITIONS == "1"
    monkeypatch.setenv("KAFKA_TOPIC_PARTITIONS", "3")
    assert stack.service_env("alpha")["KAFKA_TOPIC_PARTITIONS"] == "3"


@pytest.mark.parametrize("partitions", [1, 3])
async def test_a_service_creates_its_missing_topics_with_the_partitions_it_is_given(
    infra: Endpoints, monkeypatch: pytest.MonkeyPatch, partitions: int
) -> None:
    monkeypatch.setenv("KAFKA_TOPIC_PARTITIONS", str(partitions))
    settings = ServiceSettings(
        service_name="card", environment="test", kafka_bootstrap_servers=infra.kafka_bootstrap
    )
    runtime = ServiceRuntime(settings)
    assert settings.kafka_topic_partitions == partitions
    # Topics of its own, so that none exists yet on the shared broker.
    unique = uuid.uuid4().hex[:10]
    topics = [f"{unique}.events", f"{unique}.events.dlq"]
    monkeypatch.setattr(runtime, "topics_used", lambda: topics)
    await runtime.ensure_topics()
    reader = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap)
    await reader.start()
    try:
        assert set(topics) <= await reader.topics()
        for topic in topics:
            assert reader.partitions_for_topic(topic) == set(range(partitions))
    finally:
        await reader.stop()
        await runtime.mongo.close()
