"""Fixtures of the reliability scenarios: one private system (its own Kafka, MongoDB,
S3 and SMTP processes, so the broker and the mail server can be taken away without
touching the servers the rest of the session shares) and a reporter that prints
each scenario's figures on the terminal, even under output capture, and appends
them as JSON lines to ``test-artifacts/reliability/results.jsonl``."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from opr_shared.devstack.stack import Stack, StackPorts

RESULTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "reliability" / "results.jsonl"
COHORT_ENV = "OPR_RELIABILITY_COHORT"
DEFAULT_COHORT = 12

Report = Callable[..., None]

_lines: list[str] = []


@pytest.fixture(scope="session")
def cohort_size() -> int:
    """Students in the fault run: 12 by default, more for ``make soak``."""
    raw = os.environ.get(COHORT_ENV, "")
    return int(raw) if raw.strip() else DEFAULT_COHORT


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Report:
    """``report(scenario, figures, detail=None)``: the figures as one line on the
    terminal; figures and detail as one JSON line on disk."""
    config = request.config

    def emit(scenario: str, figures: dict[str, Any], detail: dict[str, Any] | None = None) -> None:
        summary = ", ".join(f"{k}={v}" for k, v in figures.items())
        line = f"[reliability] {scenario}: {summary}"
        _lines.append(line)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "at": datetime.now(UTC).isoformat(),
            "scenario": scenario,
            **figures,
            **(detail or {}),
        }
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, default=str) + "\n")
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        if terminal is None:
            return
        if capture is not None:
            with capture.global_and_fixture_disabled():
                terminal.write_line(line)
        else:
            terminal.write_line(line)

    return emit


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _lines:
        return
    terminalreporter.section("reliability figures", sep="-")
    for line in _lines:
        terminalreporter.line(line)


@pytest.fixture(scope="module")
def private_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A whole system on its own infrastructure (free ports, a folder under pytest's
    basetemp, kept for the logs), stopped when the module ends."""
    stack = Stack(
        tmp_path_factory.mktemp("reliability-stack"),
        StackPorts.free(),
        # A delivery claim abandoned by a killed notifier is settled when its lease
        # runs out: 30 s instead of 2 min, so it happens within the scenario.
        extra_env={"notifier": {"DELIVERY_LEASE_SECONDS": "30"}},
        # Every topic is replayed from its beginning at the end: keep every batch.
        kafka_retention_seconds=None,
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop(remove_data=False)
