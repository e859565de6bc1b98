"""Record and check the committed contract of every event in the catalogue.

For each ``(event_type, schema_version)`` the contract is two files beside this module:

- ``schemas/<EventType>.v<N>.json``: the payload's JSON schema as last published;
- ``golden/<EventType>.v<N>.json``: a full envelope built from the model's example,
  which every later model of that version must still read.

``python -m opr_shared.contracts.snapshot`` writes what is missing and updates a
snapshot after a compatible change (an added optional field, a new description).
It refuses to overwrite a snapshot with an incompatible schema: it lists the
violations and exits 1. The change must then become a new ``schema_version``.
With ``--check`` it writes nothing and exits 1 if anything is missing, out of
date or incompatible.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from opr_shared.contracts.compat import breaking_changes
from opr_shared.events.catalogue import CATALOGUE, example_payload, subject_of
from opr_shared.events.envelope import Envelope, EventPayload

CONTRACTS_DIR = Path(__file__).resolve().parent
SCHEMAS = "schemas"
GOLDEN = "golden"

_GOLDEN_NAMESPACE = uuid.UUID("6f1d3c2a-8b4e-4f5a-9c7d-2e1f0a9b8c7d")
_GOLDEN_FALLBACK_TIME = datetime(2025, 8, 1, 2, 0, tzinfo=UTC)
# Timestamps in payloads that are not the moment the event happened.
_NOT_OCCURRENCES = frozenset({"activation_expires_at", "starts_at", "ends_at"})

Catalogue = Mapping[tuple[str, int], type[EventPayload]]


def contract_name(cls: type[EventPayload]) -> str:
    return f"{cls.event_type}.v{cls.schema_version}"


def current_schema(cls: type[EventPayload]) -> dict[str, Any]:
    return cls.model_json_schema()


def golden_envelope(cls: type[EventPayload]) -> Envelope:
    """A deterministic envelope around the model's example."""
    payload = example_payload(cls)
    name = contract_name(cls)
    occurred_at = next(
        (
            value
            for key, value in payload
            if key.endswith("_at") and key not in _NOT_OCCURRENCES and isinstance(value, datetime)
        ),
        _GOLDEN_FALLBACK_TIME,
    )
    return Envelope.wrap(
        payload,
        subject=subject_of(payload),
        correlation_id=str(uuid.uuid5(_GOLDEN_NAMESPACE, f"{name}/correlation")),
        causation_id=str(uuid.uuid5(_GOLDEN_NAMESPACE, f"{name}/cause")),
        occurred_at=occurred_at,
        event_id=uuid.uuid5(_GOLDEN_NAMESPACE, name),
    )


@dataclass
class Report:
    """What a run found and did; file names are ``<EventType>.v<N>.json`` under their folder."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    incompatible: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def ok(self, *, check: bool) -> bool:
        if self.incompatible or self.problems:
            return False
        return not (check and (self.missing or self.stale))

    def lines(self) -> list[str]:
        out = [f"created {name}" for name in self.created]
        out += [f"updated {name} (compatible change)" for name in self.updated]
        out += [f"missing {name}" for name in self.missing]
        out += [f"out of date {name} (compatible change not recorded)" for name in self.stale]
        for name, violations in self.incompatible.items():
            out.append(
                f"INCOMPATIBLE {name}: not overwritten; "
                "publish the change as a new schema_version instead:"
            )
            out += [f"  - {violation}" for violation in violations]
        out += [f"PROBLEM {problem}" for problem in self.problems]
        return out


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _sync_schema(cls: type[EventPayload], path: Path, report: Report, *, write: bool) -> None:
    label = f"{SCHEMAS}/{path.name}"
    schema = current_schema(cls)
    if not path.exists():
        if write:
            _write_json(path, schema)
            report.created.append(label)
        else:
            report.missing.append(label)
        return
    committed = _read_json(path)
    violations = breaking_changes(committed, schema)
    if violations:
        report.incompatible[label] = violations
    elif committed != schema:
        if write:
            _write_json(path, schema)
            report.updated.append(label)
        else:
            report.stale.append(label)


def _sync_golden(cls: type[EventPayload], path: Path, report: Report, *, write: bool) -> None:
    label = f"{GOLDEN}/{path.name}"
    if not path.exists():
        if write:
            _write_json(path, json.loads(golden_envelope(cls).to_bytes()))
            report.created.append(label)
        else:
            report.missing.append(label)
        return
    # A golden message stands for messages already published: it is never rewritten,
    # and the current model must still read it.
    try:
        envelope = Envelope.from_bytes(path.read_bytes())
        cls.model_validate(envelope.payload)
    except (ValidationError, ValueError) as exc:
        report.problems.append(f"{label} is no longer readable: {exc}")
        return
    stated = (envelope.event_type, envelope.schema_version, envelope.producer)
    expected = (cls.event_type, cls.schema_version, cls.producer)
    if stated != expected:
        report.problems.append(f"{label} is the envelope of {stated}, expected {expected}")


def sync(
    directory: Path = CONTRACTS_DIR, catalogue: Catalogue = CATALOGUE, *, write: bool
) -> Report:
    """Compare (and with ``write``, record) the contract files of every catalogue event."""
    report = Report()
    names = set()
    for cls in catalogue.values():
        name = f"{contract_name(cls)}.json"
        names.add(name)
        _sync_schema(cls, directory / SCHEMAS / name, report, write=write)
        _sync_golden(cls, directory / GOLDEN / name, report, write=write)
    for folder in (SCHEMAS, GOLDEN):
        for path in sorted((directory / folder).glob("*.json")):
            if path.name not in names:
                report.problems.append(
                    f"{folder}/{path.name} has no model in the catalogue "
                    "(a published event or version was removed or renamed)"
                )
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m opr_shared.contracts.snapshot",
        description="Record event schema snapshots and golden messages (additive changes only).",
    )
    parser.add_argument("--check", action="store_true", help="write nothing, only check")
    parser.add_argument(
        "--dir", type=Path, default=CONTRACTS_DIR, help="folder holding schemas/ and golden/"
    )
    args = parser.parse_args(argv)
    report = sync(args.dir, write=not args.check)
    for line in report.lines():
        print(line)
    ok = report.ok(check=args.check)
    if ok:
        print(f"{len(CATALOGUE)} event contracts OK")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
