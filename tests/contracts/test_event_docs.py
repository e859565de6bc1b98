"""The event documentation is generated from the code, current, and valid AsyncAPI;
the versioning policy holds for every event in the catalogue."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
from opr_shared.events.catalogue import CATALOGUE, CONSUMERS
from opr_shared.events.envelope import SERVICES

ROOT = Path(__file__).resolve().parents[2]
ASYNCAPI_SCHEMA = ROOT / "tools/schemas/node_modules/@asyncapi/specs/schemas/3.0.0-without-$id.json"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = load_generator()


def test_committed_documents_are_what_the_code_generates() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, text in GENERATOR.generated().items()
        if not path.exists() or path.read_text() != text
    ]
    assert stale == [], "run `make docs` and commit the result"


@pytest.fixture(scope="module")
def asyncapi_validator() -> Any:
    assert ASYNCAPI_SCHEMA.exists(), "run `make test` (it installs tools/schemas)"
    schema = json.loads(ASYNCAPI_SCHEMA.read_text())
    return jsonschema.validators.validator_for(schema)(schema)


@pytest.mark.parametrize("service", SERVICES)
def test_each_asyncapi_document_is_valid(service: str, asyncapi_validator: Any) -> None:
    document = json.loads((ROOT / "docs" / "asyncapi" / f"{service}.json").read_text())
    errors = [
        f"{list(e.path)}: {e.message[:200]}" for e in asyncapi_validator.iter_errors(document)
    ]
    assert errors == []
    assert document["asyncapi"] == "3.0.0"
    assert f"{service}.events.dlq:publish" in document["channels"]


def test_the_validator_rejects_a_broken_document(asyncapi_validator: Any) -> None:
    document = json.loads((ROOT / "docs" / "asyncapi" / "identity.json").read_text())
    document["operations"]["broken"] = {"action": "broadcast", "channel": {}}
    assert list(asyncapi_validator.iter_errors(document)) != []


def test_each_producer_documents_every_event_it_publishes() -> None:
    for (event_type, version), cls in CATALOGUE.items():
        document = json.loads((ROOT / "docs" / "asyncapi" / f"{cls.producer}.json").read_text())
        assert f"{event_type}V{version}Message" in document["components"]["schemas"]


def test_the_catalogue_names_the_consumers_the_services_really_have() -> None:
    actual = GENERATOR.consumers_of()
    declared = {(t, v): sorted(CONSUMERS.get(t, set())) for (t, v) in CATALOGUE}
    assert {k: sorted(v) for k, v in actual.items()} == declared


def test_every_later_version_is_published_beside_the_one_before() -> None:
    for event_type, version in CATALOGUE:
        if version > 1:
            assert (event_type, version - 1) in CATALOGUE, (event_type, version)
