"""The load benchmark, small: ten students through the whole journey, so the driver
and its report keep working (no timing is judged here). It runs on a private stack:
the collection day it books would otherwise stay in the shared system's schedule,
and a test that publishes its own schedule there would be refused for dropping
those bookings."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opr_shared.devstack.stack import Stack
from opr_shared.testing.infra import StackFactory

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
STUDENTS = 10
SERVICES = ("identity", "registration", "documents", "notifier", "card")


def bench_module(name: str) -> Any:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(name)


def figures(summary: dict[str, Any]) -> set[str]:
    return {k for k, v in summary.items() if k.endswith("_ms") and isinstance(v, float)}


@pytest.fixture(scope="module")
def private_system(stack_factory: StackFactory) -> Iterator[Stack]:
    stack = stack_factory(own_infra=True)
    yield stack
    stack.stop()


async def test_a_small_intake_completes_and_reports_every_figure(
    private_system: Stack, tmp_path: Path
) -> None:
    driver = bench_module("bench.driver")
    runner = bench_module("bench.run")
    config = driver.Config(n=STUDENTS, users=5, staff=2, timeout=240)
    result, intake = await runner.run(
        runner.target_of(private_system), config, stack_label="test stack", ceiling_seconds=1.0
    )

    journeys = result["journeys"]
    assert journeys == {"students": STUDENTS, "completed": STUDENTS, "failed": 0, "failures": []}
    # Every student has all five milestone e-mails, each once.
    assert result["emails_missing"] == {}
    assert result["emails_duplicated"] == {}
    assert result["emails_delivered"] >= 5 * STUDENTS
    assert result["emails_by_template"] == {
        "account_activated": STUDENTS,
        "card_ready": STUDENTS,
        "form_received": STUDENTS,
        "invitation": STUDENTS,
        "registration_completed": STUDENTS,
    }
    assert result["staff_actions"] == {"document": STUDENTS, "photo": STUDENTS}
    assert result["events"]["CardIssued"] == STUDENTS
    assert result["journeys_per_second"] > 0
    # The wall time ends when the cohort is complete, after the journeys' last step;
    # the closing check (each student reads the card) is timed apart.
    phases = result["phases"]
    assert result["wall_seconds"] >= phases["import_seconds"] + phases["students_acting_seconds"]
    assert phases["closing_check_seconds"] > 0
    assert result["concurrent_users"] == 5
    # Phone-sized card photos by default, as the portal uploads what the student picked.
    assert result["uploads"]["photo_pixels"] == [2419, 3024]
    assert result["uploads"]["photo_bytes"] > 500_000

    journey_endpoints = {
        "POST /identity/accounts/activate",
        "POST /identity/sessions",
        "GET /registration/me",
        "PUT /registration/me/form",
        "POST /registration/me/submit",
        "POST /documents/me/documents",
        "POST /documents/me/photo",
        "POST /documents/documents/{id}/verify",
        "POST /documents/photos/{id}/approve",
        "GET /card/me",
    }
    assert journey_endpoints <= set(result["http"])
    for name in journey_endpoints:
        assert figures(result["http"][name]) == {"p50_ms", "p95_ms", "p99_ms", "max_ms"}, name

    latency = result["latency"]
    assert latency["event_to_email"]["count"] >= 5 * STUDENTS
    assert set(latency["event_to_email_by_template"]) == {
        "invitation",
        "account_activated",
        "form_received",
        "registration_completed",
        "card_ready",
    }
    assert latency["submit_to_card_issued"]["count"] == STUDENTS
    assert figures(latency["submit_to_card_issued"]) >= {"p50_ms", "p99_ms"}

    for name in SERVICES:
        assert result["memory"][name]["peak_rss_mb"] > 0, name
    # The load generator shares the machine, so its own CPU is reported beside the stack's.
    assert result["cpu_seconds"]["bench-driver"] > 0
    per_student = runner.report.cpu_per_student(result)
    assert per_student["stack"] > 0
    assert per_student["driver"] > 0
    units = result["transactions"]
    assert set(units) == set(SERVICES)
    for name in SERVICES:
        assert units[name]["runs"] >= units[name]["units"] > 0, name
        assert units[name]["committed"] > 0, name
    # Every student's card was issued in a committed transaction of the card service.
    assert units["card"]["committed"] >= STUDENTS
    ceiling = result["ceiling"]
    assert ceiling["kafka"]["produce_batched_per_second"] > 0
    assert ceiling["mongodb"]["transaction_two_inserts"]["per_second"] > 0
    assert ceiling["s3"]["put"]["per_second"] > 0
    use = result["utilisation"]
    assert use["db_ratio_to_transaction_ceiling"] > 0
    assert use["kafka_ratio_to_batched_produce"] > 0
    assert use["db_transactions_per_student"] > 0

    # Where the database's work went, per collection, as the server counted it.
    by_collection = {c["collection"]: c for c in result["db_collections"]}
    assert by_collection["notifier.notifications"]["insert"] >= 5  # five e-mails each
    assert by_collection["card.card_holders"]["operations"] > 0
    assert not {name.split(".")[0] for name in by_collection} & {"admin", "config", "local"}

    written = runner.write(result, intake, tmp_path, "quick")
    assert json.loads(written[0].read_text())["journeys"]["completed"] == STUDENTS
    assert "| journeys completed | 10 / 10 |" in written[1].read_text()
    assert "by collection" in written[1].read_text()
    assert written[2].read_bytes().startswith(b"\x89PNG")
