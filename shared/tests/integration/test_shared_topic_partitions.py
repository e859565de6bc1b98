"""The topics a service creates on the broker (KAFKA_CREATE_TOPICS), with the
partitions KAFKA_TOPIC_PARTITIONS gives (the local stack's is in
test_shared_local_stack_defaults.py)."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from opr_shared.localinfra import Endpoints
from opr_shared.runtime import ServiceRuntime
from opr_shared.settings import ServiceSettings

pytestmark = pytest.mark.integration


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
