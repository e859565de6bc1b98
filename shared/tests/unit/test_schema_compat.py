"""The compatibility checker catches every kind of breaking change and accepts additive ones."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

import pytest
from opr_shared.contracts.compat import breaking_changes, is_compatible
from pydantic import BaseModel, Field


def schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def only_violation(old: type[BaseModel], new: type[BaseModel]) -> str:
    violations = breaking_changes(schema(old), schema(new))
    assert len(violations) == 1, violations
    return violations[0]


class Colour(StrEnum):
    RED = "red"
    GREEN = "green"


class ColourPlus(StrEnum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Inner(BaseModel):
    code: str
    count: int


class Base(BaseModel):
    name: str = Field(description="A name.")
    age: int
    nickname: str | None = None
    colour: Colour
    born: date
    inner: Inner
    inners: list[Inner]
    tags: list[str]


class TestAccepted:
    def test_identical_schemas(self) -> None:
        assert breaking_changes(schema(Base), schema(Base)) == []

    def test_new_optional_field(self) -> None:
        class New(Base):
            email: str | None = Field(default=None, description="New and optional.")

        assert breaking_changes(schema(Base), schema(New)) == []

    def test_new_optional_field_in_nested_model(self) -> None:
        class Inner2(Inner):
            note: str = "none"

        class New(Base):
            inner: Inner2
            inners: list[Inner2]  # type: ignore[assignment]

        assert is_compatible(schema(Base), schema(New))

    def test_descriptions_titles_defaults_and_examples(self) -> None:
        class New(BaseModel):
            name: str = Field(description="Another description.", title="Full name")
            age: int = Field(examples=[18])
            nickname: str | None = "anon"
            colour: Colour
            born: date
            inner: Inner
            inners: list[Inner]
            tags: list[str]

        assert breaking_changes(schema(Base), schema(New)) == []


class TestRejected:
    def test_removed_field(self) -> None:
        class New(BaseModel):
            name: str
            age: int
            colour: Colour
            born: date
            inner: Inner
            inners: list[Inner]
            tags: list[str]

        assert only_violation(Base, New) == "nickname: property removed"

    def test_type_change(self) -> None:
        class New(Base):
            age: str  # type: ignore[assignment]

        assert only_violation(Base, New) == "age: type changed from integer to string"

    def test_widened_number(self) -> None:
        class New(Base):
            age: float  # type: ignore[assignment]

        assert "type changed from integer to number" in only_violation(Base, New)

    def test_format_change(self) -> None:
        class New(Base):
            born: datetime

        assert only_violation(Base, New) == "born: format changed from date to date-time"

    def test_new_required_field(self) -> None:
        class New(Base):
            email: str

        assert "email: new property is required" in only_violation(Base, New)

    def test_required_field_given_a_default(self) -> None:
        class New(Base):
            age: int = 18

        assert "age: no longer required" in only_violation(Base, New)

    def test_optional_field_made_required(self) -> None:
        class New(Base):
            nickname: str | None

        assert "nickname: became required" in only_violation(Base, New)

    def test_field_made_nullable(self) -> None:
        class New(Base):
            age: int | None  # type: ignore[assignment]

        assert only_violation(Base, New) == "age: became nullable"

    def test_field_no_longer_nullable(self) -> None:
        class New(Base):
            nickname: str = "anon"

        assert only_violation(Base, New) == "nickname: is no longer nullable"

    def test_enum_value_added(self) -> None:
        class New(Base):
            colour: ColourPlus  # type: ignore[assignment]

        assert only_violation(Base, New) == 'colour: allowed values changed: added "blue"'

    def test_enum_value_removed(self) -> None:
        class Old(BaseModel):
            colour: ColourPlus

        class New(BaseModel):
            colour: Colour

        assert only_violation(Old, New) == 'colour: allowed values changed: removed "blue"'

    def test_literal_change(self) -> None:
        class Old(BaseModel):
            channel: Literal["email"] = "email"

        class New(BaseModel):
            channel: Literal["email", "sms"] = "email"

        assert 'channel: allowed values changed: added "sms"' in only_violation(Old, New)

    def test_closed_set_introduced(self) -> None:
        class Old(BaseModel):
            colour: str

        class New(BaseModel):
            colour: Colour

        assert only_violation(Old, New) == "colour: values restricted to a closed set"

    def test_closed_set_opened(self) -> None:
        class New(Base):
            colour: str  # type: ignore[assignment]

        assert only_violation(Base, New) == "colour: values no longer a closed set"

    def test_nested_model_field_type_change(self) -> None:
        class Inner2(BaseModel):
            code: int
            count: int

        class New(Base):
            inner: Inner2  # type: ignore[assignment]

        assert only_violation(Base, New) == "inner.code: type changed from string to integer"

    def test_nested_model_field_removed_in_list(self) -> None:
        class Inner2(BaseModel):
            code: str

        class New(Base):
            inners: list[Inner2]  # type: ignore[assignment]

        assert only_violation(Base, New) == "inners[].count: property removed"

    def test_array_item_type_change(self) -> None:
        class New(Base):
            tags: list[int]  # type: ignore[assignment]

        assert only_violation(Base, New) == "tags[]: type changed from string to integer"

    def test_object_becomes_array(self) -> None:
        class New(Base):
            inner: list[Inner]  # type: ignore[assignment]

        assert only_violation(Base, New) == "inner: type changed from object to array"

    def test_constraint_change(self) -> None:
        class New(Base):
            name: str = Field(max_length=10)

        assert only_violation(Base, New) == "name: maxLength changed from None to 10"

    def test_pattern_change(self) -> None:
        class Old(BaseModel):
            code: str = Field(pattern=r"^[0-9]{8}$")

        class New(BaseModel):
            code: str = Field(pattern=r"^[0-9]{8,10}$")

        assert only_violation(Old, New).startswith("code: pattern changed")

    def test_union_alternatives_change(self) -> None:
        class Old(BaseModel):
            value: int | str

        class New(BaseModel):
            value: int | str | bytes

        assert only_violation(Old, New) == "value: union changed from 2 to 3 alternatives"

    def test_dict_value_type_change(self) -> None:
        class Old(BaseModel):
            counts: dict[str, int]

        class New(BaseModel):
            counts: dict[str, str]

        assert only_violation(Old, New) == "counts{}: type changed from integer to string"

    def test_every_violation_is_reported(self) -> None:
        class New(BaseModel):
            name: int
            age: int
            colour: ColourPlus
            born: date
            inner: Inner
            inners: list[Inner]
            tags: list[str]
            extra: str

        violations = breaking_changes(schema(Base), schema(New))
        assert len(violations) == 4
        assert {v.split(":")[0] for v in violations} == {"name", "nickname", "colour", "extra"}


class Node(BaseModel):
    label: str
    children: list[Node] = []


class TestRecursionAndRefs:
    def test_recursive_model_terminates(self) -> None:
        assert breaking_changes(schema(Node), schema(Node)) == []

    def test_recursive_model_change_is_found(self) -> None:
        class Node2(BaseModel):
            label: int
            children: list[Node2] = []

        assert only_violation(Node, Node2) == "label: type changed from string to integer"

    def test_refs_and_inline_schemas_compare_equal(self) -> None:
        with_ref = {
            "$defs": {"P": {"type": "object", "properties": {"x": {"type": "integer"}}}},
            "type": "object",
            "properties": {"p": {"$ref": "#/$defs/P", "description": "d"}},
            "required": ["p"],
        }
        inline = {
            "type": "object",
            "properties": {"p": {"type": "object", "properties": {"x": {"type": "integer"}}}},
            "required": ["p"],
        }
        assert breaking_changes(with_ref, inline) == []
        changed = {
            "type": "object",
            "properties": {"p": {"type": "object", "properties": {"x": {"type": "string"}}}},
            "required": ["p"],
        }
        assert breaking_changes(with_ref, changed) == ["p.x: type changed from integer to string"]

    def test_remote_ref_is_refused(self) -> None:
        remote = {"type": "object", "properties": {"p": {"$ref": "https://example.com/s.json"}}}
        with pytest.raises(ValueError, match="only local"):
            breaking_changes(remote, remote)
