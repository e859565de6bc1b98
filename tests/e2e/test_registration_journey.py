"""Registration through the public API: the form once, the staff view, the intake calendar."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from opr_shared.devstack.stack import Stack
from opr_shared.events.envelope import Envelope
from opr_shared.testing.journey import (
    bearer,
    eventually_get,
    form_answers,
    jupas_token,
    new_student_no,
    roster_row,
    staff_token,
)
from opr_shared.testing.kafka import read_topic

pytestmark = pytest.mark.e2e

FORM = form_answers(gender="male")


async def _import(client: httpx.AsyncClient, staff: str, row: dict[str, Any]) -> None:
    imported = await client.post(
        "/api/identity/admissions/import", json=[row], headers=bearer(staff)
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["created"] == 1


async def _events(system: Stack, key: str, count: int) -> list[Envelope]:
    records = await read_topic(
        system.endpoints.kafka_bootstrap,
        "registration.events",
        lambda m: m.key == key.encode(),
        count=count,
        timeout=30,
        settle=1.0,
    )
    return [Envelope.from_bytes(m.value) for m in records]


async def test_a_student_submits_the_form_once_and_staff_see_it(system: Stack) -> None:
    number = new_student_no()
    row = roster_row(number)
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        staff = await staff_token(client, "registry_officer")
        await _import(client, staff, row)
        student = bearer(await jupas_token(client, row))

        client.headers.update(student)
        mine = await eventually_get(client, "/api/registration/me")
        assert mine.status_code == 200, mine.text
        assert mine.json()["form"]["surname"] == "Wong"
        assert mine.json()["intake"]["registration_deadline"] == "2027-08-13T09:00:00Z"

        bad = await client.put("/api/registration/me/form", json={"hkid_number": "A123456(4)"})
        assert bad.status_code == 422
        draft = await client.put("/api/registration/me/form", json={"residency": "hk_permanent"})
        assert draft.status_code == 200
        submitted = await client.post("/api/registration/me/submit", json=FORM)
        assert submitted.status_code == 200, submitted.text
        again = await client.post("/api/registration/me/submit", json=FORM)
        assert again.status_code == 409
        assert "only once" in again.json()["detail"]

        forbidden = await client.get(f"/api/registration/registrations/{number}")
        assert forbidden.status_code == 403
        client.headers.update(bearer(staff))
        detail = await client.get(f"/api/registration/registrations/{number}")
        assert detail.status_code == 200
        causes = [h["cause"] for h in detail.json()["history"]]
        assert causes[0] == "StudentAdmitted"
        assert "submit_form" in causes
        found = await client.get(
            "/api/registration/registrations", params={"q": number, "item": "photo"}
        )
        assert [r["student_no"] for r in found.json()["items"]] == [number]
        exported = await client.get(
            "/api/registration/registrations/export.csv", params={"q": number}
        )
        assert number in exported.text

    events = await _events(system, number, 2)
    assert [e.event_type for e in events] == ["RegistrationStatusChanged", "FormSubmitted"]
    assert events[1].payload["required_documents"] == ["hk_permanent_id_card"]


async def test_closing_an_intake_withdraws_who_did_nothing_and_twice_changes_nothing(
    system: Stack,
) -> None:
    year = 2040 + uuid.uuid4().int % 50
    number = new_student_no()
    row = roster_row(number, intake_year=year)
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        staff = await staff_token(client, "registry_officer")
        client.headers.update(bearer(staff))
        calendar = {
            "registration_deadline": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            "term_start": f"{year}-09-01",
        }
        put = await client.put(f"/api/registration/intakes/{year}", json=calendar)
        assert put.status_code == 200, put.text
        await _import(client, staff, row)
        opened = await eventually_get(client, f"/api/registration/registrations/{number}")
        assert opened.status_code == 200, opened.text

        closed = await client.post(f"/api/registration/intakes/{year}/close")
        assert closed.status_code == 200, closed.text
        assert (closed.json()["applied"], closed.json()["outcomes"]) == (1, {"withdrawn": 1})
        again = await client.post(f"/api/registration/intakes/{year}/close")
        assert (again.json()["already_closed"], again.json()["applied"]) == (True, 0)
        withdrawn = await client.get(
            "/api/registration/registrations",
            params={"status": "withdrawn", "intake_year": year},
        )
        assert [r["student_no"] for r in withdrawn.json()["items"]] == [number]

    events = await _events(system, number, 3)
    assert [e.event_type for e in events] == [
        "RegistrationStatusChanged",
        "RegistrationStatusChanged",
        "RegistrationWithdrawn",
    ]
    assert events[2].payload["personal_email"] == row["personal_email"]


async def test_the_demo_intake_is_scheduled(system: Stack) -> None:
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        client.headers.update(bearer(await staff_token(client, "admin")))
        intake = await client.get("/api/registration/intakes/2027")
    assert intake.status_code == 200, intake.text
    assert intake.json() | {"closed_at": None} == {
        "intake_year": 2027,
        "registration_deadline": "2027-08-13T09:00:00Z",
        "term_start": "2027-09-01",
        "age_cutoff": "2027-09-01",
        "closed_at": None,
    }
