"""Settings the local stack gives every service it starts, unless the environment
sets them: each is tuned for the local servers, and production leaves it unset."""

from __future__ import annotations

from pathlib import Path

import pytest
from opr_shared.devstack.stack import (
    LOCAL_KAFKA_TOPIC_PARTITIONS,
    LOCAL_MONGODB_MAX_POOL_SIZE,
    LOCAL_OUTBOX_LINGER_SECONDS,
    Stack,
    StackPorts,
)


@pytest.mark.parametrize(
    ("variable", "local", "expected", "other"),
    [
        # The relay waits 0.2 s after a commit wakes it (fewer, larger produces).
        ("OUTBOX_LINGER_SECONDS", LOCAL_OUTBOX_LINGER_SECONDS, "0.2", "0"),
        # Eight database connections per process.
        ("MONGODB_MAX_POOL_SIZE", LOCAL_MONGODB_MAX_POOL_SIZE, "8", "40"),
        # Topics created with one partition.
        ("KAFKA_TOPIC_PARTITIONS", LOCAL_KAFKA_TOPIC_PARTITIONS, "1", "3"),
    ],
)
def test_the_local_stack_sets_it_unless_the_environment_does(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    local: str,
    expected: str,
    other: str,
) -> None:
    monkeypatch.delenv(variable, raising=False)
    stack = Stack(tmp_path, StackPorts.free(("alpha",)), services=("alpha",))
    assert stack.service_env("alpha")[variable] == local == expected
    monkeypatch.setenv(variable, other)
    assert stack.service_env("alpha")[variable] == other
