"""Is a new JSON schema of an event payload still readable by everyone who read the old one?

Both directions matter on Kafka: a consumer built against the old schema receives
messages written with the new one, and a consumer built against the new schema
replays messages written with the old one. So, for every property at every depth:

- it may not be removed, nor change type, nullability, format, constraints or
  its closed set of values (enum / const);
- it may not move between required and optional;
- a new property must be optional (old messages lack it).

Adding an optional property is the only change accepted; titles, descriptions,
defaults and examples are ignored. Schemas are pydantic's ``model_json_schema()``
output: local ``$ref`` into ``$defs``, unions as ``anyOf``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

JsonSchema = Mapping[str, Any]

_CONSTRAINTS = (
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)


def breaking_changes(old: JsonSchema, new: JsonSchema) -> list[str]:
    """Every change from ``old`` to ``new`` that a reader of either could not handle.

    Each entry reads ``<path>: <what changed>``; an empty list means compatible.
    """
    return _Comparison(old, new).run()


def is_compatible(old: JsonSchema, new: JsonSchema) -> bool:
    return not breaking_changes(old, new)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _describe(values: Sequence[str]) -> str:
    return ", ".join(values)


class _Comparison:
    def __init__(self, old: JsonSchema, new: JsonSchema) -> None:
        self._old_root = old
        self._new_root = new
        self._violations: list[str] = []
        # (old $ref, new $ref) pairs being compared, so recursive models terminate.
        self._in_progress: set[tuple[str, str]] = set()

    def run(self) -> list[str]:
        self._compare(self._old_root, self._new_root, "")
        return self._violations

    def _report(self, path: str, message: str) -> None:
        self._violations.append(f"{path or '(root)'}: {message}")

    def _compare(self, old: JsonSchema, new: JsonSchema, path: str) -> None:
        old_ref, old = _resolve(self._old_root, old)
        new_ref, new = _resolve(self._new_root, new)
        pair = (old_ref, new_ref)
        if old_ref and new_ref:
            if pair in self._in_progress:
                return
            self._in_progress.add(pair)
        try:
            if _is_union(old) or _is_union(new):
                self._compare_unions(old, new, path)
            else:
                self._compare_single(old, new, path)
        finally:
            self._in_progress.discard(pair)

    def _compare_unions(self, old: JsonSchema, new: JsonSchema, path: str) -> None:
        old_nullable, old_options = _options(self._old_root, old)
        new_nullable, new_options = _options(self._new_root, new)
        if old_nullable != new_nullable:
            self._report(path, "became nullable" if new_nullable else "is no longer nullable")
        if len(old_options) != len(new_options):
            self._report(
                path, f"union changed from {len(old_options)} to {len(new_options)} alternatives"
            )
            return
        pairs = zip(old_options, new_options, strict=True)
        for index, (old_option, new_option) in enumerate(pairs):
            option_path = path if len(old_options) == 1 else f"{path}<{index}>"
            self._compare(old_option, new_option, option_path)

    def _compare_single(self, old: JsonSchema, new: JsonSchema, path: str) -> None:
        old_values, new_values = _allowed_values(old), _allowed_values(new)
        if old_values != new_values:
            self._report_values(path, old_values, new_values)

        old_type, new_type = _type_of(old), _type_of(new)
        if old_type != new_type:
            self._report(path, f"type changed from {old_type} to {new_type}")
            return
        if old.get("format") != new.get("format"):
            self._report(path, f"format changed from {old.get('format')} to {new.get('format')}")
        for keyword in _CONSTRAINTS:
            if old.get(keyword) != new.get(keyword):
                self._report(
                    path, f"{keyword} changed from {old.get(keyword)!r} to {new.get(keyword)!r}"
                )
        if old_type == "object":
            self._compare_object(old, new, path)
        elif old_type == "array":
            self._compare_array(old, new, path)

    def _report_values(
        self, path: str, old: frozenset[str] | None, new: frozenset[str] | None
    ) -> None:
        if old is None or new is None:
            opened = "restricted to a closed set" if old is None else "no longer a closed set"
            self._report(path, f"values {opened}")
            return
        parts = []
        if added := sorted(new - old):
            parts.append(f"added {_describe(added)}")
        if removed := sorted(old - new):
            parts.append(f"removed {_describe(removed)}")
        self._report(path, "allowed values changed: " + "; ".join(parts))

    def _compare_object(self, old: JsonSchema, new: JsonSchema, path: str) -> None:
        old_props: Mapping[str, JsonSchema] = old.get("properties", {})
        new_props: Mapping[str, JsonSchema] = new.get("properties", {})
        old_required = set(old.get("required", ()))
        new_required = set(new.get("required", ()))
        for name, old_prop in old_props.items():
            child = _join(path, name)
            if name not in new_props:
                self._report(child, "property removed")
                continue
            if name in old_required and name not in new_required:
                self._report(child, "no longer required (older readers need it)")
            elif name in new_required and name not in old_required:
                self._report(child, "became required (older messages may lack it)")
            self._compare(old_prop, new_props[name], child)
        for name in new_props:
            if name not in old_props and name in new_required:
                self._report(
                    _join(path, name),
                    "new property is required (older messages lack it; give it a default)",
                )

        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties", True)
        if isinstance(old_extra, Mapping) and isinstance(new_extra, Mapping):
            self._compare(old_extra, new_extra, f"{path}{{}}")
        elif old_extra != new_extra:
            self._report(path, "additionalProperties changed")

    def _compare_array(self, old: JsonSchema, new: JsonSchema, path: str) -> None:
        old_prefix: Sequence[JsonSchema] = old.get("prefixItems", ())
        new_prefix: Sequence[JsonSchema] = new.get("prefixItems", ())
        if len(old_prefix) != len(new_prefix):
            self._report(path, "tuple length changed")
        else:
            for index, (old_item, new_item) in enumerate(zip(old_prefix, new_prefix, strict=True)):
                self._compare(old_item, new_item, f"{path}[{index}]")
        old_items, new_items = old.get("items"), new.get("items")
        if isinstance(old_items, Mapping) and isinstance(new_items, Mapping):
            self._compare(old_items, new_items, f"{path}[]")
        elif old_items != new_items:
            self._report(path, "array items changed")


def _resolve(root: JsonSchema, node: JsonSchema) -> tuple[str, JsonSchema]:
    """Follow ``$ref`` (and a one-element ``allOf`` wrapper) to the schema it names.

    Returns the last reference followed ('' if none) and the schema, with any
    keywords written beside the reference laid over it.
    """
    ref = ""
    for _ in range(64):
        all_of = node.get("allOf")
        if isinstance(all_of, Sequence) and len(all_of) == 1:
            siblings = {k: v for k, v in node.items() if k != "allOf"}
            node = {**all_of[0], **siblings}
            continue
        target = node.get("$ref")
        if not isinstance(target, str):
            return ref, node
        ref = target
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**_lookup(root, target), **siblings}
    raise ValueError("too many nested $ref")


def _lookup(root: JsonSchema, ref: str) -> JsonSchema:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $ref are supported, not {ref!r}")
    node: Any = root
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or token not in node:
            raise ValueError(f"unresolvable $ref {ref!r}")
        node = node[token]
    if not isinstance(node, Mapping):
        raise ValueError(f"$ref {ref!r} is not a schema")
    return node


def _is_union(node: JsonSchema) -> bool:
    return "anyOf" in node or "oneOf" in node or isinstance(node.get("type"), list)


def _options(root: JsonSchema, node: JsonSchema) -> tuple[bool, list[JsonSchema]]:
    """Split a schema into (accepts null, the non-null alternatives)."""
    options: Sequence[JsonSchema]
    union = node.get("anyOf", node.get("oneOf"))
    node_type = node.get("type")
    if isinstance(union, Sequence):
        options = union
    elif isinstance(node_type, list):
        options = [{**node, "type": t} for t in node_type]
    else:
        options = [node]
    nullable = False
    rest: list[JsonSchema] = []
    for option in options:
        if _resolve(root, option)[1].get("type") == "null":
            nullable = True
        else:
            rest.append(option)
    return nullable, rest


def _allowed_values(node: JsonSchema) -> frozenset[str] | None:
    """The closed set of values a schema allows (JSON-encoded), or None if open."""
    if "const" in node:
        return frozenset({json.dumps(node["const"])})
    if "enum" in node:
        return frozenset(json.dumps(value) for value in node["enum"])
    return None


def _type_of(node: JsonSchema) -> str:
    declared = node.get("type")
    if isinstance(declared, str):
        return declared
    if "properties" in node or "additionalProperties" in node:
        return "object"
    if "items" in node or "prefixItems" in node:
        return "array"
    return "any"
