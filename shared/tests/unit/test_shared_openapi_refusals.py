"""The documented 422 answer matches what services send: FastAPI's validation list,
or a service's own reason (a sentence or an object)."""

from __future__ import annotations

from typing import Any

import jsonschema
from fastapi import APIRouter, HTTPException
from fastapi.testclient import TestClient
from opr_shared.runtime import ServiceRuntime, create_http_app
from opr_shared.settings import ServiceSettings
from pydantic import BaseModel


class Body(BaseModel):
    count: int


def app_refusing_in_three_ways() -> Any:
    router = APIRouter()

    @router.post("/sentence")
    async def sentence(body: Body) -> None:
        raise HTTPException(422, "the count does not add up")

    @router.post("/problems")
    async def problems(body: Body) -> None:
        raise HTTPException(422, {"code": "bad", "problems": [{"field": "count"}]})

    runtime = ServiceRuntime(ServiceSettings(service_name="card", environment="test"))
    return create_http_app(runtime, routers=[router], title="Demo", description="Refusals.")


def test_every_kind_of_422_matches_the_documented_schema() -> None:
    app = app_refusing_in_three_ways()
    document = app.openapi()
    documented = document["paths"]["/api/card/sentence"]["post"]["responses"]["422"]
    reference = documented["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator({**reference, "components": document["components"]})
    client = TestClient(app)
    answers = [
        client.post("/api/card/sentence", json={"count": 1}),
        client.post("/api/card/problems", json={"count": 1}),
        client.post("/api/card/sentence", json={"count": "many"}),  # FastAPI's own list
    ]
    assert [a.status_code for a in answers] == [422, 422, 422]
    for answer in answers:
        validator.validate(answer.json())
    assert app.openapi() is document  # generated once, adjusted once
