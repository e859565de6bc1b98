"""Figures of a run: latencies, throughput, memory, the ceiling ratio; JSON, Markdown, plot."""

from __future__ import annotations

import math
import os
import platform
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
from opr_shared.store.mongo import make_client
from opr_shared.testing.metrics import totals_by_label

from bench.driver import Intake


def _pausing(r: dict[str, Any]) -> str:
    think = r.get("think_seconds") or 0
    return f" pausing {think:g} s on average before each step" if think else " with no pauses"


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); ``None`` without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def summary_ms(seconds: list[float]) -> dict[str, Any]:
    return {
        "count": len(seconds),
        "p50_ms": ms(percentile(seconds, 50)),
        "p95_ms": ms(percentile(seconds, 95)),
        "p99_ms": ms(percentile(seconds, 99)),
        "max_ms": ms(max(seconds) if seconds else None),
    }


def memory(pids: dict[str, int]) -> dict[str, dict[str, float | None]]:
    """Peak (VmHWM) and current (VmRSS) resident memory of each process, in MB."""
    out: dict[str, dict[str, float | None]] = {}
    for name, pid in sorted(pids.items()):
        fields: dict[str, float | None] = {"peak_rss_mb": None, "rss_mb": None}
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    kib = int(value.split()[0])
                    fields["peak_rss_mb" if key == "VmHWM" else "rss_mb"] = round(kib / 1024, 1)
        except (OSError, ValueError):
            pass
        out[name] = fields
    return out


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) each process has used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[name] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return out


def machine() -> dict[str, Any]:
    total_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                total_kib = int(line.split()[1])
    except OSError:
        pass
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gb": round(total_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


UNIT_OUTCOMES = ("committed", "already_processed", "failed")


async def unit_of_work_counts(
    service_urls: dict[str, list[str]],
) -> dict[str, dict[str, float]]:
    """Each service's unit-of-work counters from its processes' ``/metrics``
    (outcomes and transaction runs, summed); a service with a process that does
    not answer is left out."""
    counts: dict[str, dict[str, float]] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for name, urls in service_urls.items():
            mine = dict.fromkeys((*UNIT_OUTCOMES, "runs"), 0.0)
            try:
                for url in urls:
                    response = await client.get(f"{url.rstrip('/')}/metrics")
                    response.raise_for_status()
                    outcomes = totals_by_label(response.text, "units_of_work_total", "outcome")
                    runs = totals_by_label(response.text, "transaction_runs_total", "service")
                    for outcome in UNIT_OUTCOMES:
                        mine[outcome] += outcomes.get(outcome, 0.0)
                    mine["runs"] += sum(runs.values())
            except httpx.HTTPError:
                continue
            counts[name] = mine
    return counts


def transactions(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
) -> dict[str, dict[str, Any]]:
    """Per service during the run: units of work by outcome, transaction runs, and
    the runs beyond one per unit (transactions run again after a conflict)."""
    table: dict[str, dict[str, Any]] = {}
    for name, now in sorted(after.items()):
        then = before.get(name, {})
        delta = {key: int(value - then.get(key, 0.0)) for key, value in now.items()}
        units = sum(delta.get(outcome, 0) for outcome in UNIT_OUTCOMES)
        runs = delta.get("runs", 0)
        table[name] = {
            "units": units,
            **{outcome: delta.get(outcome, 0) for outcome in UNIT_OUTCOMES},
            "runs": runs,
            "run_again": max(0, runs - units),
            "runs_per_unit": round(runs / units, 3) if units else None,
        }
    return table


async def _admin_command(uri: str, name: str) -> dict[str, Any]:
    """The server's answer to an admin command; empty where it does not answer it."""
    client = make_client(uri, "bench-report")
    try:
        return dict(await client.admin.command(name))
    except Exception:
        return {}
    finally:
        await client.close()


async def opcounters(uri: str) -> dict[str, int]:
    """The database server's operation counters (serverStatus), if it reports them."""
    status = await _admin_command(uri, "serverStatus")
    return {str(k): int(v) for k, v in (status.get("opcounters") or {}).items()}


#: The operation kinds the ``top`` command counts for each collection.
TOP_KINDS = ("queries", "getmore", "insert", "update", "remove", "commands")
#: Databases of the server itself, not of any service.
SERVER_DATABASES = frozenset({"admin", "config", "local"})


async def collection_counters(uri: str) -> dict[str, dict[str, int]]:
    """Operations of each kind and the server's time on them (microseconds), per
    collection, from the ``top`` command; empty where the server does not answer it."""
    totals = (await _admin_command(uri, "top")).get("totals") or {}
    counters: dict[str, dict[str, int]] = {}
    for namespace, row in totals.items():
        if not isinstance(row, dict) or namespace.split(".", 1)[0] in SERVER_DATABASES:
            continue  # the "note" entry, and the server's own collections
        counters[namespace] = {
            **{kind: int(row[kind]["count"]) for kind in TOP_KINDS if kind in row},
            "time_us": int(row.get("total", {}).get("time", 0)),
        }
    return counters


def collections(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], students: int
) -> list[dict[str, Any]]:
    """Per collection during the run, per student: operations by kind, all of them,
    and the server's milliseconds on them; the most time first."""
    rows: list[dict[str, Any]] = []
    for namespace, now in after.items():
        then = before.get(namespace, {})
        delta = {key: value - then.get(key, 0) for key, value in now.items()}
        operations = sum(delta.get(kind, 0) for kind in TOP_KINDS)
        if not operations or not students:
            continue
        rows.append(
            {
                "collection": namespace,
                "operations": round(operations / students, 2),
                "server_ms": round(delta.get("time_us", 0) / 1000 / students, 2),
                **{kind: round(delta[kind] / students, 2) for kind in TOP_KINDS if delta.get(kind)},
            }
        )
    rows.sort(key=lambda row: (-row["server_ms"], row["collection"]))
    return rows


def end_to_end(intake: Intake) -> dict[str, Any]:
    """Event-to-email (cause event → the sink's X-Received-At) and submit-to-card."""
    topics = intake.topics
    # The sink's file names the notification; NotificationSent names its cause and template.
    notifications: dict[str, tuple[str, str]] = {}
    for events in topics.events.values():
        for e in events:
            if e.event_type == "NotificationSent" and "notification_id" in e.payload:
                notifications[str(e.payload["notification_id"])] = (
                    str(e.payload.get("cause_event_id")),
                    str(e.payload.get("template", "?")),
                )
    to_email: list[float] = []
    per_template: dict[str, list[float]] = defaultdict(list)
    for mails in intake.mail.mails.values():
        for mail in mails:
            if mail.notification_id is None:
                continue
            found = notifications.get(mail.notification_id)
            if found is None:
                continue
            cause_id, template = found
            cause = topics.by_id.get(cause_id)
            if cause is None:
                continue
            seconds = (mail.received_at - cause.occurred_at).total_seconds()
            to_email.append(seconds)
            per_template[template].append(seconds)
    to_card: list[float] = []
    to_slot: list[float] = []
    for student in intake.students:
        submitted = topics.first(student.student_no, "FormSubmitted")
        issued = topics.first(student.student_no, "CardIssued")
        ready = topics.first(student.student_no, "CardReadyForCollection")
        if submitted and issued:
            to_card.append((issued.occurred_at - submitted.occurred_at).total_seconds())
        if submitted and ready:
            to_slot.append((ready.occurred_at - submitted.occurred_at).total_seconds())
    return {
        "event_to_email": summary_ms(to_email),
        "event_to_email_by_template": {k: summary_ms(v) for k, v in sorted(per_template.items())},
        "commit_to_topic_by_topic": {
            topic: summary_ms(lags) for topic, lags in sorted(topics.relay_lag.items())
        },
        "submit_to_card_issued": summary_ms(to_card),
        "submit_to_card_ready_for_collection": summary_ms(to_slot),
    }


def http_table(intake: Intake) -> dict[str, Any]:
    http = intake.http
    return {
        name: {
            **summary_ms(samples),
            "statuses": {str(k): v for k, v in sorted(http.statuses[name].items())},
            "transport_errors": http.errors.get(name, 0),
        }
        for name, samples in sorted(http.samples.items())
    }


def ratio(system: float, ceiling: float | None) -> float | None:
    return None if not ceiling else round(system / ceiling, 4)


def utilisation(
    intake: Intake,
    wall: float,
    ceiling: dict[str, Any],
    writes: dict[str, int],
    db_ops: dict[str, int],
) -> dict[str, Any]:
    completed = sum(1 for s in intake.students if s.finished)
    events = intake.topics.total
    tx = sum(writes.values())
    uploads = 2 * completed
    kafka = ceiling.get("kafka", {})
    mongo = ceiling.get("mongodb", {})
    s3 = ceiling.get("s3", {})
    tx_ceiling = mongo.get("transaction_two_inserts", {}).get("per_second")
    students = len(intake.students)
    per_journey = tx / students if students else None
    return {
        "kafka_events_per_second": round(events / wall, 1),
        "kafka_ratio_to_batched_produce": ratio(
            events / wall, kafka.get("produce_batched_per_second")
        ),
        "kafka_ratio_to_one_by_one_produce": ratio(
            events / wall, kafka.get("produce_acked_one_by_one_per_second")
        ),
        "db_transactions": writes,
        "db_operations_per_student": {
            k: round(v / students, 1) for k, v in db_ops.items() if students
        },
        "db_transactions_per_student": round(per_journey, 1) if per_journey else None,
        "db_transactions_per_second": round(tx / wall, 1),
        "db_ratio_to_transaction_ceiling": ratio(tx / wall, tx_ceiling),
        "journeys_per_second_the_db_ceiling_allows": (
            round(tx_ceiling / per_journey, 3) if tx_ceiling and per_journey else None
        ),
        "s3_puts_per_second": round(uploads / wall, 2),
        "s3_ratio_to_put_ceiling": ratio(uploads / wall, s3.get("put", {}).get("per_second")),
    }


def _uploads(r: dict[str, Any]) -> list[str]:
    files = r.get("uploads")  # absent from results taken before it was recorded
    if not files:
        return []
    width, height = files["photo_pixels"]
    return [
        f"Each student uploads a {width}x{height} card photo ({files['photo_bytes'] / 1e6:.2f} MB) "
        f"and a {files['document_bytes'] / 1e3:.1f} kB PDF."
    ]


#: The load generator's own row among the processes measured.
DRIVER = "bench-driver"


def cpu_per_student(result: dict[str, Any]) -> dict[str, float]:
    """CPU seconds per completed journey: the stack's processes, and the load generator's."""
    done = result["journeys"]["completed"]
    if not done:
        return {}
    cpu = result["cpu_seconds"]
    driver = cpu.get(DRIVER)
    stack = sum(v for k, v in cpu.items() if k != DRIVER)
    out = {"stack": round(stack / done, 3)}
    if driver is not None:
        out["driver"] = round(driver / done, 3)
    return out


def _cpu_per_student(r: dict[str, Any]) -> list[str]:
    per = cpu_per_student(r)
    if not per:
        return []
    driver = f" (load generator {per['driver']})" if "driver" in per else ""
    return [f"| CPU seconds per student, stack | {per['stack']}{driver} |"]


#: Collections listed in the Markdown table (the JSON has them all).
COLLECTIONS_SHOWN = 15


def markdown_collections(rows: list[dict[str, Any]]) -> list[str]:
    """The per-collection table of :func:`collections`, its first rows."""
    shown = rows[:COLLECTIONS_SHOWN]
    lines = [
        "Database operations per student by collection (the server's `top`; its "
        "time includes waiting for its lock), the most time first:",
        "",
        "| collection | operations | server ms | queries | inserts | updates | commands |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in shown:
        lines.append(
            f"| {c['collection']} | {c['operations']} | {c['server_ms']} "
            f"| {c.get('queries', 0)} | {c.get('insert', 0)} | {c.get('update', 0)} "
            f"| {c.get('commands', 0)} |"
        )
    if len(rows) > len(shown):
        lines.append(f"| {len(rows) - len(shown)} more (in the JSON) | | | | | | |")
    return lines


def markdown(result: dict[str, Any]) -> str:
    r = result
    lines = [
        f"# Benchmark: {r['journeys']['completed']} of {r['journeys']['students']} registrations",
        "",
        f"{r['when']} on {r['machine']['nproc']} CPUs ({r['machine']['cpu']}), "
        f"{r['machine']['memory_gb']} GB; load average {r['load_average']['start']} at the "
        f"start, {r['load_average']['end']} at the end; {r['concurrent_users']} concurrent "
        f"users{_pausing(r)}, {r['staff_per_queue']} staff per queue; stack: {r['stack']}.",
        *_uploads(r),
        "",
        "| figure | value |",
        "|---|---|",
        f"| journeys completed | {r['journeys']['completed']} / {r['journeys']['students']} |",
        f"| wall time, whole cohort | {r['wall_seconds']:.1f} s |",
        f"| journeys per second | {r['journeys_per_second']:.3f} |",
        *_cpu_per_student(r),
        f"| event → e-mail p50 / p99 | {_pair(r['latency']['event_to_email'])} |",
        f"| submit → card issued p50 / p99 | {_pair(r['latency']['submit_to_card_issued'])} |",
        f"| Kafka events/s (ratio to batched produce ceiling) | "
        f"{r['utilisation']['kafka_events_per_second']} "
        f"({r['utilisation']['kafka_ratio_to_batched_produce']}) |",
        f"| MongoDB transactions/s (ratio to ceiling) | "
        f"{r['utilisation']['db_transactions_per_second']} "
        f"({r['utilisation']['db_ratio_to_transaction_ceiling']}) |",
        f"| MongoDB transactions per student | {r['utilisation']['db_transactions_per_student']} |",
        "| MongoDB operations per student (serverStatus) | "
        + ", ".join(f"{k} {v}" for k, v in r["utilisation"]["db_operations_per_student"].items())
        + " |",
        f"| S3 puts/s (ratio to ceiling) | {r['utilisation']['s3_puts_per_second']} "
        f"({r['utilisation']['s3_ratio_to_put_ceiling']}) |",
        "",
        "HTTP latency (through the gateway):",
        "",
        "| endpoint | n | p50 ms | p95 ms | p99 ms | statuses |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, h in r["http"].items():
        statuses = ", ".join(f"{k}: {v}" for k, v in h["statuses"].items())
        lines.append(
            f"| {name} | {h['count']} | {h['p50_ms']} | {h['p95_ms']} | {h['p99_ms']} "
            f"| {statuses} |"
        )
    lines += [
        "",
        "Peak resident memory (VmHWM) and CPU time used during the intake:",
        "",
        "| process | peak MB | now MB | CPU s |",
        "|---|---:|---:|---:|",
    ]
    for name, m in r["memory"].items():
        cpu = r["cpu_seconds"].get(name, "")
        lines.append(f"| {name} | {m['peak_rss_mb']} | {m['rss_mb']} | {cpu} |")
    if r.get("transactions"):
        lines += [
            "",
            "Units of work (transactions) per service; runs beyond one per unit are "
            "transactions run again after a conflict:",
            "",
            "| service | units | failed | runs | run again | runs per unit |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, t in r["transactions"].items():
            lines.append(
                f"| {name} | {t['units']} | {t['failed']} | {t['runs']} | {t['run_again']} "
                f"| {t['runs_per_unit']} |"
            )
    if r.get("db_collections"):  # absent from results taken before it was recorded
        lines += ["", *markdown_collections(r["db_collections"])]
    if r["emails_duplicated"]:
        lines += [
            "",
            f"E-mails delivered twice to {len(r['emails_duplicated'])} student(s): "
            + "; ".join(
                f"{k}: {', '.join(v)}" for k, v in list(r["emails_duplicated"].items())[:3]
            ),
        ]
    c = r["ceiling"]
    if c:
        lines += [
            "",
            "Raw ceiling of the same servers:",
            "",
            f"- Kafka: {c['kafka']['produce_acked_one_by_one_per_second']} msg/s produced one "
            f"by one (acks=all), {c['kafka']['produce_batched_per_second']} msg/s batched, "
            f"{c['kafka']['consume_per_second']} msg/s consumed (1 KiB);",
            f"- MongoDB ({c['mongodb']['concurrency']} at once): "
            f"{c['mongodb']['insert']['per_second']} inserts/s, "
            f"{c['mongodb']['find_by_id']['per_second']} finds/s, "
            f"{c['mongodb']['transaction_two_inserts']['per_second']} transactions/s "
            "(two inserts each);",
            f"- S3 ({c['s3']['concurrency']} at once, 64 KiB): {c['s3']['put']['per_second']} "
            f"puts/s, {c['s3']['get']['per_second']} gets/s.",
        ]
    if r["journeys"]["failures"]:
        lines += ["", "Failures (first few):", ""]
        lines += [f"- {f}" for f in r["journeys"]["failures"][:5]]
    return "\n".join(lines) + "\n"


def _pair(s: dict[str, Any]) -> str:
    def sec(v: float | None) -> str:
        return "n/a" if v is None else f"{v / 1000:.2f} s"

    return f"{sec(s['p50_ms'])} / {sec(s['p99_ms'])}"


def plot(result: dict[str, Any], intake: Intake, path: Path) -> None:
    """Completions over time and HTTP p50/p99 per endpoint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = sorted(s.completed - intake.began for s in intake.students if s.completed)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    left.step(done, range(1, len(done) + 1), where="post")
    left.set_xlabel("seconds since the roster import")
    left.set_ylabel("registrations complete (card issued, 5 e-mails)")
    left.set_title(f"{len(done)} of {len(intake.students)} students")
    left.grid(alpha=0.3)
    names = list(result["http"])
    p50 = [result["http"][n]["p50_ms"] or 0 for n in names]
    p99 = [result["http"][n]["p99_ms"] or 0 for n in names]
    ys = range(len(names))
    right.barh([y + 0.2 for y in ys], p99, height=0.4, label="p99")
    right.barh([y - 0.2 for y in ys], p50, height=0.4, label="p50")
    right.set_yticks(list(ys), names, fontsize=7)
    right.set_xscale("log")
    right.set_xlabel("ms")
    right.set_title(
        f"HTTP latency, {result['concurrent_users']} concurrent users{_pausing(result)}"
    )
    right.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
