"""Generate the event documentation from the code: ``make docs``.

- ``docs/asyncapi/<service>.json``: the AsyncAPI 3.0 document of each service
  (FastStream, from the catalogue and the service's subscription table);
- ``docs/events.md``: the event reference for downstream teams.

``python docs/generate.py --check`` writes nothing and fails when a committed
file differs from what the code generates.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
from pathlib import Path
from typing import Any

from opr_shared.contracts.asyncapi import build_asyncapi
from opr_shared.contracts.snapshot import CONTRACTS_DIR, GOLDEN, contract_name
from opr_shared.events.catalogue import CATALOGUE, events_by_producer
from opr_shared.events.envelope import SERVICES, EventPayload, dead_letter_topic_for, topic_for
from opr_shared.messaging.consumer import Subscriptions

DOCS = Path(__file__).resolve().parent
VERSION = "1.0.0"


def subscriptions_of(service: str) -> Subscriptions:
    """The service's subscription table, as its composition root builds it."""
    settings = importlib.import_module(f"{service}.settings").Settings(
        environment="test", s3_endpoint="http://127.0.0.1:9", jwks_url="http://127.0.0.1:9/jwks"
    )
    runtime = importlib.import_module(f"{service}.main").build_runtime(settings)
    subscriptions: Subscriptions = runtime.subscriptions
    return subscriptions


def consumers_of() -> dict[tuple[str, int], list[str]]:
    """Who consumes each event (type, version), from the services' own tables."""
    out: dict[tuple[str, int], list[str]] = {key: [] for key in CATALOGUE}
    for service in SERVICES:
        for event in subscriptions_of(service).events:
            out[(event.event_type, event.schema_version)].append(service)
    return out


def _type_of(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        target = defs.get(name, {})
        if "enum" in target:
            return " \\| ".join(f"`{v}`" for v in target["enum"])
        return name
    if "anyOf" in schema:
        options = [_type_of(s, defs) for s in schema["anyOf"] if s.get("type") != "null"]
        nullable = any(s.get("type") == "null" for s in schema["anyOf"])
        return " or ".join(options) + (" or null" if nullable else "")
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type_of(schema.get('items', {}), defs)}"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return str(kind)


def _fields_table(event: type[EventPayload]) -> list[str]:
    schema = event.model_json_schema()
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    rows = ["| field | type | required | description |", "|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        description = " ".join(str(prop.get("description", "")).split()).replace("|", "\\|")
        rows.append(
            f"| `{name}` | {_type_of(prop, defs)} | {'yes' if name in required else 'no'} "
            f"| {description} |"
        )
    return rows


def events_markdown() -> str:
    consumers = consumers_of()
    lines = [
        "# Event reference",
        "",
        "Generated from the code by `make docs`; do not edit by hand.",
        "",
        "Every event travels in one envelope (JSON, UTF-8) on the topic of the service",
        "that produced it. The Kafka key is the envelope's `subject` (the student",
        "number; `intake:<year>` for intake events), so one student's events from one",
        "producer arrive in order; events from different producers may arrive in any",
        "order. Headers repeat `event_type`, `schema_version`, `event_id` and",
        "`correlation_id`. Delivery is at least once: deduplicate on `event_id`.",
        "Versions follow [event-versioning.md](event-versioning.md); the machine-readable",
        "documents are in [asyncapi/](asyncapi/).",
        "",
        "| envelope field | meaning |",
        "|---|---|",
        "| `event_id` | UUID; the same event delivered twice has the same id |",
        "| `event_type`, `schema_version` | which payload schema, and its version |",
        "| `occurred_at` | when the state change happened (UTC, ISO 8601) |",
        "| `producer` | the service that produced it |",
        "| `correlation_id` | shared by everything one request set off |",
        "| `causation_id` | the event (or request) that directly caused this one |",
        "| `subject` | the student number (also the key) |",
        "| `payload` | the event's fields, below |",
        "",
        "## Topics",
        "",
        "| topic | producer | events |",
        "|---|---|---|",
    ]
    by_producer = events_by_producer()
    for service in SERVICES:
        names = ", ".join(
            f"[{e.event_type}](#{e.event_type.lower()})" for e in by_producer.get(service, [])
        )
        lines.append(f"| `{topic_for(service)}` | {service} | {names} |")
    lines += [
        "",
        "Each consuming service also owns `<service>.events.dlq` (for example",
        f"`{dead_letter_topic_for('registration')}`): records it could not handle, with the",
        "error in headers.",
        "",
    ]
    for service in SERVICES:
        for event in by_producer.get(service, []):
            key = (event.event_type, event.schema_version)
            golden = json.loads(
                (CONTRACTS_DIR / GOLDEN / f"{contract_name(event)}.json").read_text()
            )
            who = ", ".join(consumers[key]) or "downstream systems only"
            doc = inspect.cleandoc(event.__doc__ or "")
            lines += [
                f"## {event.event_type}",
                "",
                f"Version {event.schema_version} · topic `{topic_for(service)}` · producer "
                f"{service} · consumed by {who}",
                "",
                doc,
                "",
                *_fields_table(event),
                "",
                "Example:",
                "",
                "```json",
                json.dumps(golden, indent=2, ensure_ascii=False),
                "```",
                "",
            ]
    return "\n".join(lines)


def generated() -> dict[Path, str]:
    files: dict[Path, str] = {}
    for service in SERVICES:
        document = build_asyncapi(service, subscriptions_of(service), VERSION)
        files[DOCS / "asyncapi" / f"{service}.json"] = (
            json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        )
    files[DOCS / "events.md"] = events_markdown()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a committed file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generated().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        stale.append(path.relative_to(DOCS.parent))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.check and stale:
        print("stale (run `make docs`): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    print(("updated: " + ", ".join(map(str, stale))) if stale else "documentation up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
