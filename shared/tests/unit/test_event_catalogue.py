"""The event catalogue: documented, exemplified models and the look-ups services rely on."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from opr_shared.events import (
    CATALOGUE,
    CONSUMERS,
    SERVICES,
    AccountActivated,
    CardReadyForCollection,
    DocumentVerified,
    Envelope,
    EventPayload,
    FormSubmitted,
    IntakeScheduled,
    NotificationFailed,
    NotificationSent,
    PhotoApproved,
    StudentAdmitted,
    StudentParticularsUpdated,
    UnknownEvent,
    consumed_by,
    events_by_producer,
    example_payload,
    parse_payload,
    payload_class,
    subject_of,
)
from pydantic import BaseModel, ValidationError

EVENTS = sorted(CATALOGUE.values(), key=lambda cls: cls.event_type)
ids = [cls.event_type for cls in EVENTS]

# SPEC §4, row by row: each row names a group of events and the services that
# consume that group. Every named service consumes at least one event of its row
# (card, for example, needs only PhotoApproved of the photo events).
SPEC_ROWS: list[tuple[set[str], set[str]]] = [
    ({"StudentAdmitted"}, {"registration", "documents", "notifier", "card"}),
    ({"InvitationIssued"}, {"notifier"}),
    ({"AccountActivated"}, {"registration", "notifier", "card"}),
    ({"FormSubmitted"}, {"documents", "notifier"}),
    (
        {
            "RegistrationStatusChanged",
            "RegistrationCompleted",
            "RegistrationIncomplete",
            "RegistrationWithdrawn",
        },
        {"notifier", "card"},
    ),
    ({"DocumentUploaded", "DocumentVerified", "DocumentRejected"}, {"registration", "notifier"}),
    ({"PhotoSubmitted", "PhotoApproved", "PhotoRejected"}, {"registration", "card", "notifier"}),
    ({"CardIssued", "CardReadyForCollection", "CardCollected"}, {"registration", "notifier"}),
    ({"NotificationSent", "NotificationFailed"}, set()),
]


def example_dict(cls: type[EventPayload]) -> dict[str, Any]:
    extra = cls.model_config.get("json_schema_extra")
    assert isinstance(extra, dict)
    examples = extra["examples"]
    assert isinstance(examples, list)
    example = examples[0]
    assert isinstance(example, dict)
    return dict(example)


def properties(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property of the schema and of every model in its $defs."""
    yield from ((f"{schema['title']}.{n}", p) for n, p in schema.get("properties", {}).items())
    for name, definition in schema.get("$defs", {}).items():
        for prop, value in definition.get("properties", {}).items():
            yield f"{name}.{prop}", value


class TestEveryEvent:
    @pytest.mark.parametrize("cls", EVENTS, ids=ids)
    def test_identity_of_the_model(self, cls: type[EventPayload]) -> None:
        assert cls.event_type == cls.__name__
        assert cls.schema_version == 1
        assert cls.producer in SERVICES
        assert CATALOGUE[(cls.event_type, cls.schema_version)] is cls
        assert cls.topic() == f"{cls.producer}.events"

    @pytest.mark.parametrize("cls", EVENTS, ids=ids)
    def test_docstring_names_producer_and_consumers(self, cls: type[EventPayload]) -> None:
        doc = cls.__doc__ or ""
        assert "Produced by" in doc
        assert cls.producer in doc
        assert "Consumed by" in doc
        for service in CONSUMERS[cls.event_type]:
            assert service in doc, f"{cls.event_type} docstring does not mention {service}"

    @pytest.mark.parametrize("cls", EVENTS, ids=ids)
    def test_every_field_is_described(self, cls: type[EventPayload]) -> None:
        schema = cls.model_json_schema()
        undescribed = [name for name, prop in properties(schema) if not prop.get("description")]
        assert undescribed == []
        assert schema.get("description")

    @pytest.mark.parametrize("cls", EVENTS, ids=ids)
    def test_example_validates_and_covers_every_field(self, cls: type[EventPayload]) -> None:
        example = example_dict(cls)
        payload = example_payload(cls)
        assert isinstance(payload, cls)
        assert set(example) == set(cls.model_fields)
        assert payload.model_dump(mode="json") == cls.model_validate(example).model_dump(
            mode="json"
        )

    @pytest.mark.parametrize("cls", EVENTS, ids=ids)
    def test_config_is_inherited(self, cls: type[EventPayload]) -> None:
        assert cls.model_config.get("extra") == "ignore"
        assert cls.model_config.get("frozen") is True
        payload = example_payload(cls)
        with pytest.raises(ValidationError):
            payload.student_no = "x"  # type: ignore[attr-defined]

    @pytest.mark.parametrize("cls", EVENTS, ids=ids)
    def test_subject(self, cls: type[EventPayload]) -> None:
        payload = example_payload(cls)
        expected = "intake:2025" if cls is IntakeScheduled else payload.student_no  # type: ignore[attr-defined]
        assert subject_of(payload) == expected


class TestConsumers:
    def test_every_event_has_an_entry(self) -> None:
        assert set(CONSUMERS) == {cls.event_type for cls in EVENTS}

    def test_covers_the_spec(self) -> None:
        for events, services in SPEC_ROWS:
            for service in services:
                assert any(service in CONSUMERS[e] for e in events), (service, events)

    def test_only_known_services_and_never_the_producer(self) -> None:
        for cls in EVENTS:
            assert CONSUMERS[cls.event_type] <= set(SERVICES)
            assert cls.producer not in CONSUMERS[cls.event_type]

    def test_intake_calendar_reaches_identity_and_notifier(self) -> None:
        assert {"identity", "notifier"} <= CONSUMERS["IntakeScheduled"]

    def test_corrections_reach_whoever_read_the_admission(self) -> None:
        assert CONSUMERS["StudentAdmitted"] <= CONSUMERS["StudentParticularsUpdated"]

    def test_consumed_by(self) -> None:
        assert "InvitationIssued" in consumed_by("notifier")
        assert "IntakeScheduled" in consumed_by("identity")
        assert "NotificationSent" not in set().union(*(consumed_by(s) for s in SERVICES))
        with pytest.raises(ValueError, match="unknown service"):
            consumed_by("housing")


class TestLookups:
    def test_payload_class(self) -> None:
        assert payload_class("FormSubmitted", 1) is FormSubmitted

    def test_payload_class_unknown_version_names_the_known_ones(self) -> None:
        with pytest.raises(UnknownEvent, match=r"FormSubmitted.*version 9.*\[1\]"):
            payload_class("FormSubmitted", 9)

    def test_payload_class_unknown_type(self) -> None:
        with pytest.raises(UnknownEvent, match="FormSubmited"):
            payload_class("FormSubmited", 1)

    def test_events_by_producer(self) -> None:
        grouped = events_by_producer()
        assert set(grouped) == set(SERVICES)
        assert sum(len(classes) for classes in grouped.values()) == len(CATALOGUE)
        assert StudentAdmitted in grouped["identity"]
        assert IntakeScheduled in grouped["registration"]
        assert PhotoApproved in grouped["documents"]
        assert NotificationSent in grouped["notifier"]
        for producer, classes in grouped.items():
            assert all(cls.producer == producer for cls in classes)


def wrap(payload: EventPayload) -> Envelope:
    return Envelope.wrap(payload, subject=subject_of(payload), correlation_id="req-1")


class TestParsePayload:
    def test_round_trip(self) -> None:
        payload = example_payload(DocumentVerified)
        envelope = Envelope.from_bytes(wrap(payload).to_bytes())
        assert parse_payload(envelope) == payload

    def test_unknown_event_type(self) -> None:
        envelope = wrap(example_payload(AccountActivated)).model_copy(
            update={"event_type": "AccountDeleted"}
        )
        with pytest.raises(UnknownEvent, match="AccountDeleted"):
            parse_payload(envelope)

    def test_unknown_version(self) -> None:
        envelope = wrap(example_payload(AccountActivated)).model_copy(update={"schema_version": 2})
        with pytest.raises(UnknownEvent, match="version 2"):
            parse_payload(envelope)

    def test_wrong_producer(self) -> None:
        envelope = wrap(example_payload(AccountActivated)).model_copy(update={"producer": "card"})
        with pytest.raises(UnknownEvent, match="produced by 'identity'"):
            parse_payload(envelope)

    def test_bad_payload(self) -> None:
        envelope = wrap(example_payload(AccountActivated))
        broken = envelope.model_copy(update={"payload": {**envelope.payload, "student_no": "x"}})
        with pytest.raises(ValidationError, match="student_no"):
            parse_payload(broken)

    def test_unknown_fields_are_ignored(self) -> None:
        envelope = wrap(example_payload(AccountActivated))
        newer = envelope.model_copy(update={"payload": {**envelope.payload, "added_later": 1}})
        assert parse_payload(newer) == example_payload(AccountActivated)


class TestValueRules:
    def test_timestamps_are_normalised_to_utc(self) -> None:
        data = {**example_dict(AccountActivated), "activated_at": "2025-08-02T11:15:00+08:00"}
        event = AccountActivated.model_validate(data)
        assert event.activated_at == datetime(2025, 8, 2, 3, 15, tzinfo=UTC)
        assert event.activated_at.utcoffset() is not None
        assert event.model_dump(mode="json")["activated_at"] == "2025-08-02T03:15:00Z"

    def test_naive_timestamps_are_refused(self) -> None:
        data = {**example_dict(AccountActivated), "activated_at": "2025-08-02T03:15:00"}
        with pytest.raises(ValidationError, match="activated_at"):
            AccountActivated.model_validate(data)

    def test_phone_numbers_are_compacted(self) -> None:
        data = {**example_dict(StudentAdmitted), "mobile": "+852 9123-4567"}
        assert StudentAdmitted.model_validate(data).mobile == "+85291234567"

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("student_no", "S1234"),
            ("personal_email", "not-an-email"),
            ("admission_route", "jupas"),
            ("date_of_birth", "02/10/2007"),
            ("mobile", "12345"),
        ],
    )
    def test_bad_particulars_are_refused(self, field: str, value: str) -> None:
        with pytest.raises(ValidationError, match=field):
            StudentAdmitted.model_validate({**example_dict(StudentAdmitted), field: value})

    def test_study_level_defaults_to_undergraduate(self) -> None:
        data = example_dict(StudentAdmitted)
        del data["study_level"]
        assert StudentAdmitted.model_validate(data).study_level == "undergraduate"

    def test_particulars_update_names_what_changed(self) -> None:
        data = {**example_dict(StudentParticularsUpdated), "changed_fields": []}
        with pytest.raises(ValidationError, match="changed_fields"):
            StudentParticularsUpdated.model_validate(data)

    def test_university_email_must_be_a_connect_address(self) -> None:
        data = {**example_dict(AccountActivated), "university_email": "tmpchan@example.edu.hk"}
        with pytest.raises(ValidationError, match="university_email"):
            AccountActivated.model_validate(data)

    def test_hkid_number_format(self) -> None:
        data = {**example_dict(FormSubmitted), "hkid_number": "A1234563"}
        with pytest.raises(ValidationError, match="hkid_number"):
            FormSubmitted.model_validate(data)

    def test_card_image_digest_must_match(self) -> None:
        data = {**example_dict(PhotoApproved), "card_image_sha256": "0" * 64}
        with pytest.raises(ValidationError, match="does not match"):
            PhotoApproved.model_validate(data)

    def test_card_image_must_be_a_jpeg(self) -> None:
        png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
        data = {
            **example_dict(PhotoApproved),
            "card_image_jpeg_base64": base64.b64encode(png).decode(),
            "card_image_sha256": hashlib.sha256(png).hexdigest(),
        }
        with pytest.raises(ValidationError, match="not a JPEG"):
            PhotoApproved.model_validate(data)

    def test_card_image_decodes(self) -> None:
        image = example_payload(PhotoApproved).card_image()  # type: ignore[attr-defined]
        assert image.startswith(b"\xff\xd8")
        assert image.endswith(b"\xff\xd9")

    def test_collection_window_is_ordered(self) -> None:
        data = {**example_dict(CardReadyForCollection), "ends_at": "2025-08-20T01:00:00Z"}
        with pytest.raises(ValidationError, match="ends_at must be after starts_at"):
            CardReadyForCollection.model_validate(data)

    @pytest.mark.parametrize("cls", [NotificationSent, NotificationFailed])
    def test_notifier_audit_events_carry_no_addresses(self, cls: type[BaseModel]) -> None:
        assert not [name for name in cls.model_fields if "email" in name]
        assert "@" not in str(example_dict(cls))  # type: ignore[arg-type]

    def test_notification_ids_are_uuids(self) -> None:
        event = example_payload(NotificationSent)
        assert isinstance(event.cause_event_id, uuid.UUID)  # type: ignore[attr-defined]
