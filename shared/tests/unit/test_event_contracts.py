"""Contract tests: committed golden messages and schema snapshots hold for the current models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, ClassVar

import pytest
from opr_shared.contracts import snapshot
from opr_shared.contracts.compat import breaking_changes
from opr_shared.events import (
    CATALOGUE,
    HEADER_CORRELATION_ID,
    HEADER_EVENT_ID,
    HEADER_EVENT_TYPE,
    HEADER_SCHEMA_VERSION,
    Envelope,
    EventPayload,
    FormSubmitted,
    Gender,
    IntakeScheduled,
    StudentAdmitted,
    parse_payload,
)
from pydantic import ConfigDict, Field

EVENTS = sorted(CATALOGUE.values(), key=lambda cls: cls.event_type)
ids = [cls.event_type for cls in EVENTS]
CONTRACTS = snapshot.CONTRACTS_DIR


def committed_schema(cls: type[EventPayload]) -> dict[str, Any]:
    path = CONTRACTS / snapshot.SCHEMAS / f"{snapshot.contract_name(cls)}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def golden_bytes(cls: type[EventPayload]) -> bytes:
    return (CONTRACTS / snapshot.GOLDEN / f"{snapshot.contract_name(cls)}.json").read_bytes()


class TestCommittedContracts:
    @pytest.mark.parametrize("cls", EVENTS, ids=ids)
    def test_snapshot_is_compatible_with_the_model(self, cls: type[EventPayload]) -> None:
        violations = breaking_changes(committed_schema(cls), cls.model_json_schema())
        assert violations == [], (
            f"{cls.event_type} v{cls.schema_version} changed incompatibly; "
            "publish a new schema_version instead"
        )

    @pytest.mark.parametrize("cls", EVENTS, ids=ids)
    def test_snapshot_is_recorded(self, cls: type[EventPayload]) -> None:
        assert committed_schema(cls) == cls.model_json_schema(), "run `make schemas`"

    @pytest.mark.parametrize("cls", EVENTS, ids=ids)
    def test_golden_message_parses(self, cls: type[EventPayload]) -> None:
        envelope = Envelope.from_bytes(golden_bytes(cls))
        assert (envelope.event_type, envelope.schema_version) == (
            cls.event_type,
            cls.schema_version,
        )
        assert envelope.producer == cls.producer
        payload = parse_payload(envelope)
        assert type(payload) is cls
        # Nothing in a golden message is left unread by the current model.
        assert set(envelope.payload) <= set(cls.model_fields)

    @pytest.mark.parametrize("cls", EVENTS, ids=ids)
    def test_golden_message_round_trips(self, cls: type[EventPayload]) -> None:
        envelope = Envelope.from_bytes(golden_bytes(cls))
        again = Envelope.from_bytes(envelope.to_bytes())
        assert again == envelope
        payload = parse_payload(envelope)
        rewrapped = Envelope.wrap(
            payload,
            subject=envelope.subject,
            correlation_id=envelope.correlation_id,
            causation_id=envelope.causation_id,
            occurred_at=envelope.occurred_at,
            event_id=envelope.event_id,
        )
        assert Envelope.from_bytes(rewrapped.to_bytes()) == envelope

    @pytest.mark.parametrize("cls", EVENTS, ids=ids)
    def test_golden_wire_format(self, cls: type[EventPayload]) -> None:
        envelope = Envelope.from_bytes(golden_bytes(cls))
        if cls is IntakeScheduled:
            assert envelope.subject == f"intake:{envelope.payload['intake_year']}"
        else:
            assert envelope.subject == envelope.payload["student_no"]
        assert envelope.topic == f"{cls.producer}.events"
        assert envelope.key == envelope.subject.encode()
        assert envelope.headers() == {
            HEADER_EVENT_TYPE: cls.event_type,
            HEADER_SCHEMA_VERSION: str(cls.schema_version),
            HEADER_EVENT_ID: str(envelope.event_id),
            HEADER_CORRELATION_ID: envelope.correlation_id,
        }
        assert envelope.occurred_at.utcoffset() is not None

    def test_no_contract_without_a_model(self) -> None:
        report = snapshot.sync(CONTRACTS, write=False)
        assert report.problems == []
        assert report.incompatible == {}
        assert report.missing == []


class TestTheContractCanFail:
    def test_incompatible_edit_of_a_published_event_is_caught(self) -> None:
        class ChangedFormSubmitted(FormSubmitted):
            gender: str  # type: ignore[assignment]
            hkid_number: str

        violations = breaking_changes(
            committed_schema(FormSubmitted), ChangedFormSubmitted.model_json_schema()
        )
        assert "gender: values no longer a closed set" in violations
        assert "hkid_number: is no longer nullable" in violations
        assert "hkid_number: became required (older messages may lack it)" in violations

    def test_nested_edit_of_a_published_event_is_caught(self) -> None:
        schema = FormSubmitted.model_json_schema()
        schema["$defs"]["EmergencyContact"]["properties"]["phone"]["type"] = "integer"
        assert breaking_changes(committed_schema(FormSubmitted), schema) == [
            "emergency_contact.phone: type changed from string to integer"
        ]

    def test_additive_optional_field_passes(self) -> None:
        class ExtendedStudentAdmitted(StudentAdmitted):
            preferred_name: str | None = Field(default=None, description="Added later.")

        schema = ExtendedStudentAdmitted.model_json_schema()
        assert breaking_changes(committed_schema(StudentAdmitted), schema) == []


class ProbeV1(EventPayload):
    """A test event, as an older consumer knows it."""

    event_type: ClassVar[str] = "Probe"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "card"

    student_no: str = Field(description="Student number.")
    count: int = Field(description="A count.")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"student_no": "20251234", "count": 3}]}
    )


class ProbeAdditive(ProbeV1):
    """The same event after a compatible change."""

    note: str | None = Field(default=None, description="Added later.")


class ProbeBroken(EventPayload):
    """The same event after an incompatible change."""

    event_type: ClassVar[str] = "Probe"
    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "card"

    student_no: str = Field(description="Student number.")
    count: str = Field(description="A count, now text.")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"student_no": "20251234", "count": "3"}]}
    )


class TestOldReaders:
    def test_old_reader_ignores_new_fields(self) -> None:
        newer = ProbeAdditive(student_no="20251234", count=3, note="hello")
        envelope = Envelope.from_bytes(
            Envelope.wrap(newer, subject="20251234", correlation_id="c").to_bytes()
        )
        assert envelope.payload["note"] == "hello"
        old = ProbeV1.model_validate(envelope.payload)
        assert old == ProbeV1(student_no="20251234", count=3)
        assert "note" not in old.model_dump()

    def test_new_reader_reads_old_messages(self) -> None:
        older = ProbeV1(student_no="20251234", count=3)
        assert ProbeAdditive.model_validate(older.model_dump(mode="json")).note is None

    def test_catalogue_reader_ignores_new_fields_of_a_golden_message(self) -> None:
        envelope = Envelope.from_bytes(golden_bytes(FormSubmitted))
        raw = json.loads(golden_bytes(FormSubmitted))
        raw["payload"]["preferred_language"] = "zh-Hant"
        raw["payload"]["emergency_contact"]["email"] = "siu.ming@example.com"
        raw["tenant"] = "main"
        newer = Envelope.from_bytes(json.dumps(raw).encode())
        assert parse_payload(newer) == parse_payload(envelope)
        assert parse_payload(newer).gender is Gender.MALE  # type: ignore[attr-defined]


Catalogue = dict[tuple[str, int], type[EventPayload]]


class TestSnapshotTool:
    def run(self, directory: Path, catalogue: Catalogue, *, write: bool) -> snapshot.Report:
        return snapshot.sync(directory, catalogue, write=write)

    def test_records_missing_files(self, tmp_path: Path) -> None:
        report = self.run(tmp_path, {("Probe", 1): ProbeV1}, write=True)
        assert report.created == ["schemas/Probe.v1.json", "golden/Probe.v1.json"]
        assert report.ok(check=False)
        schema = json.loads((tmp_path / "schemas" / "Probe.v1.json").read_text())
        assert schema == ProbeV1.model_json_schema()
        golden = Envelope.from_bytes((tmp_path / "golden" / "Probe.v1.json").read_bytes())
        assert golden.subject == "20251234"
        assert ProbeV1.model_validate(golden.payload).count == 3
        assert self.run(tmp_path, {("Probe", 1): ProbeV1}, write=False).ok(check=True)

    def test_check_writes_nothing(self, tmp_path: Path) -> None:
        report = self.run(tmp_path, {("Probe", 1): ProbeV1}, write=False)
        assert report.missing == ["schemas/Probe.v1.json", "golden/Probe.v1.json"]
        assert not report.ok(check=True)
        assert not any(tmp_path.iterdir())

    def test_refuses_an_incompatible_schema(self, tmp_path: Path) -> None:
        self.run(tmp_path, {("Probe", 1): ProbeV1}, write=True)
        before = (tmp_path / "schemas" / "Probe.v1.json").read_text()
        report = self.run(tmp_path, {("Probe", 1): ProbeBroken}, write=True)
        assert report.incompatible == {
            "schemas/Probe.v1.json": ["count: type changed from integer to string"]
        }
        assert (tmp_path / "schemas" / "Probe.v1.json").read_text() == before
        assert not report.ok(check=False)
        assert any("golden/Probe.v1.json is no longer readable" in p for p in report.problems)

    def test_updates_after_a_compatible_change(self, tmp_path: Path) -> None:
        self.run(tmp_path, {("Probe", 1): ProbeV1}, write=True)
        catalogue: Catalogue = {("Probe", 1): ProbeAdditive}
        check = self.run(tmp_path, catalogue, write=False)
        assert check.stale == ["schemas/Probe.v1.json"]
        assert not check.ok(check=True)
        report = self.run(tmp_path, catalogue, write=True)
        assert report.updated == ["schemas/Probe.v1.json"]
        assert report.ok(check=False)
        schema = json.loads((tmp_path / "schemas" / "Probe.v1.json").read_text())
        assert "note" in schema["properties"]

    def test_a_removed_event_is_reported(self, tmp_path: Path) -> None:
        self.run(tmp_path, {("Probe", 1): ProbeV1}, write=True)
        report = self.run(tmp_path, {}, write=True)
        assert len(report.problems) == 2
        assert all("has no model in the catalogue" in p for p in report.problems)

    def test_main_refuses_and_lists_violations(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        shutil.copytree(CONTRACTS / "schemas", tmp_path / "schemas")
        shutil.copytree(CONTRACTS / "golden", tmp_path / "golden")
        tampered = tmp_path / "schemas" / "CardCollected.v1.json"
        schema = json.loads(tampered.read_text())
        schema["properties"]["venue"] = {"type": "string", "description": "Gone since."}
        schema["required"].append("venue")
        tampered.write_text(json.dumps(schema))
        before = tampered.read_text()

        assert snapshot.main(["--dir", str(tmp_path)]) == 1
        out = capsys.readouterr().out
        assert "INCOMPATIBLE schemas/CardCollected.v1.json" in out
        assert "venue: property removed" in out
        assert tampered.read_text() == before

    def test_main_check_on_the_committed_contracts(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert snapshot.main(["--check"]) == 0
        assert f"{len(CATALOGUE)} event contracts OK" in capsys.readouterr().out
