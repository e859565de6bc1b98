"""One benchmark run against a :class:`Target`: the intake, then the ceiling, then figures."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opr_shared import eventloop
from opr_shared.devstack.stack import Stack, with_direct_connection

from bench import ceiling, report
from bench.driver import EXPECTED_MAILS, Config, Intake, Target

RESULTS = Path(__file__).resolve().parent / "results"


def target_of(stack: Stack) -> Target:
    pids: dict[str, int] = {}
    for name in stack.components:
        pid = stack.process(name).pid
        if pid:
            pids[name] = pid
    urls = {name: stack.process_urls(name) for name in stack.services}
    return Target(stack.gateway_url, stack.endpoints, pids, urls)


@contextmanager
def profiling(target: Target, out: Path | None, seconds: int) -> Iterator[None]:
    """py-spy flame graphs of every service for the first ``seconds`` of the intake."""
    if out is None:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    recorders = [
        subprocess.Popen(  # noqa: S603 - our own venv's py-spy, arguments we built
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--nonblocking",
                "--format",
                "raw",
                "--duration",
                str(seconds),
                "--rate",
                "50",
                "--pid",
                str(pid),
                "--output",
                str(out / f"profile-{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in target.pids.items()
    ]
    try:
        yield
    finally:
        for recorder in recorders:
            try:
                recorder.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                recorder.terminate()


async def run(
    target: Target,
    config: Config,
    *,
    stack_label: str,
    measure_ceiling: bool = True,
    ceiling_seconds: float = 4.0,
    profile_dir: Path | None = None,
    profile_seconds: int = 60,
) -> tuple[dict[str, Any], Intake]:
    load_start = report.load_average()
    intake = Intake(target, config)
    mongo_uri = with_direct_connection(target.endpoints.mongodb_uri)
    ops_before = await report.opcounters(mongo_uri)
    collections_before = await report.collection_counters(mongo_uri)
    # The load generator shares the machine: its own CPU is reported beside the stack's.
    measured = {**target.pids, report.DRIVER: os.getpid()}
    cpu_before = report.cpu_seconds(measured)
    units_before = await report.unit_of_work_counts(target.service_urls)
    with profiling(target, profile_dir, profile_seconds):
        timing = await intake.run()
    memory = report.memory(measured)
    cpu_after = report.cpu_seconds(measured)
    units_after = await report.unit_of_work_counts(target.service_urls)
    load_end = report.load_average()
    ops_after = await report.opcounters(mongo_uri)
    collections_after = await report.collection_counters(mongo_uri)
    transactions = report.transactions(units_before, units_after)
    # Transactions committed, per service (a unit of work may cover several events).
    writes = {name: row["committed"] for name, row in transactions.items()}
    limits: dict[str, Any] = {}
    if measure_ceiling:
        limits = await ceiling.measure(
            dataclasses.replace(target.endpoints, mongodb_uri=mongo_uri),
            seconds=ceiling_seconds,
        )
    completed = [s for s in intake.students if s.finished]
    failures = [f"{s.student_no}: {s.error}" for s in intake.students if s.error]
    wall = float(timing["wall_seconds"])
    result: dict[str, Any] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": report.machine(),
        "load_average": {"start": load_start, "end": load_end},
        "stack": stack_label,
        "concurrent_users": config.users,
        "think_seconds": config.think,
        "staff_per_queue": config.staff,
        "uploads": {
            "photo_pixels": list(config.photo_size),
            "photo_bytes": len(intake.photo),
            "document_bytes": len(intake.pdf),
        },
        "journeys": {
            "students": len(intake.students),
            "completed": len(completed),
            "failed": len(failures),
            "failures": failures[:20],
        },
        "wall_seconds": round(wall, 2),
        "journeys_per_second": round(len(completed) / wall, 4) if wall else 0.0,
        "phases": {k: v for k, v in timing.items() if k != "wall_seconds"},
        "emails_delivered": sum(len(m) for m in intake.mail.mails.values()),
        "emails_missing": {
            number: sorted(m.subject for m in mails)
            for number, mails in intake.mail.mails.items()
            if len({m.subject for m in mails}) < EXPECTED_MAILS
        },
        "emails_duplicated": {
            number: sorted(
                {m.subject for m in mails if [x.subject for x in mails].count(m.subject) > 1}
            )
            for number, mails in intake.mail.mails.items()
            if len(mails) > len({m.subject for m in mails})
        },
        "staff_actions": dict(intake.staff_done),
        "events": dict(sorted(intake.topics.counts.items())),
        "emails_by_template": intake.topics.templates(),
        "http": report.http_table(intake),
        "latency": report.end_to_end(intake),
        "memory": memory,
        "cpu_seconds": {
            name: round(cpu_after[name] - cpu_before.get(name, 0.0), 1) for name in cpu_after
        },
        "transactions": transactions,
        "ceiling": limits,
        "utilisation": report.utilisation(
            intake,
            wall,
            limits,
            writes,
            {k: v - ops_before.get(k, 0) for k, v in ops_after.items()},
        ),
    }
    result["db_collections"] = report.collections(
        collections_before, collections_after, len(intake.students)
    )
    return result, intake


def write(result: dict[str, Any], intake: Intake, out: Path, name: str = "latest") -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.json", out / f"{name}.md", out / f"{name}.png"]
    paths[0].write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    paths[1].write_text(report.markdown(result))
    report.plot(result, intake, paths[2])
    return paths


def run_sync(*args: Any, **kwargs: Any) -> tuple[dict[str, Any], Intake]:
    return eventloop.run(run(*args, **kwargs))
