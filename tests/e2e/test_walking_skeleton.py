"""One admitted student, end to end, through the public API, Kafka and the mail sink."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from opr_shared.devstack.stack import Stack
from opr_shared.events.envelope import Envelope
from opr_shared.smtpsink import text_body, wait_for_mail
from opr_shared.testing.journey import (
    bearer,
    eventually_get,
    new_student_no,
    roster_row,
    staff_token,
)
from opr_shared.testing.kafka import read_topic

pytestmark = pytest.mark.e2e

SERVICES = ("identity", "registration", "documents", "notifier", "card")


async def test_every_service_is_ready_behind_one_origin(system: Stack) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for name in SERVICES:
            ready = await client.get(f"{system.service_url(name)}/readyz")
            assert ready.status_code == 200, (name, ready.text)
            assert set(ready.json()["checks"]) >= {"database", "broker"}
            docs = await client.get(f"{system.gateway_url}/api/{name}/openapi.json")
            assert docs.status_code == 200, name
            assert docs.json()["info"]["title"].lower() == name
            metrics = await client.get(f"{system.service_url(name)}/metrics")
            assert "outbox_published_total" in metrics.text


async def test_importing_one_student_reaches_every_service_and_mails_the_invitation(
    system: Stack,
) -> None:
    number = new_student_no()
    row = roster_row(number)
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        client.headers.update(bearer(await staff_token(client, "registry_officer")))
        imported = await client.post("/api/identity/admissions/import?invite=true", json=[row])
        assert imported.status_code == 200, imported.text
        assert imported.json() | {"errors": [], "import_id": None} == {
            "import_id": None,
            "created": 1,
            "updated": 0,
            "unchanged": 0,
            "rejected": 0,
            "invited": 1,
            "errors": [],
        }
        correlation_id = imported.headers["X-Correlation-ID"]

        # A downstream team sees both events, keyed by the student number.
        records = await read_topic(
            system.endpoints.kafka_bootstrap,
            "identity.events",
            lambda m: m.key == number.encode(),
            count=2,
            settle=1.0,
        )
        envelopes = [Envelope.from_bytes(m.value) for m in records]
        assert [e.event_type for e in envelopes] == ["StudentAdmitted", "InvitationIssued"]
        assert {e.correlation_id for e in envelopes} == {correlation_id}

        registration = await eventually_get(client, f"/api/registration/registrations/{number}")
        assert registration.status_code == 200, registration.text
        body = registration.json()
        assert body["status"] == "in_progress"
        assert body["prefill"]["surname"] == "Wong"
        assert body["prefill"]["date_of_birth"] == "2007-11-05"

        client.headers.update(bearer(await staff_token(client, "card_office")))
        holder = await eventually_get(client, f"/api/card/holders/{number}")
        assert holder.status_code == 200, holder.text
        assert holder.json()["status"] == "awaiting_eligibility"

    assert system.maildir is not None
    mail = await wait_for_mail(
        system.maildir, lambda m: str(m["To"]) == row["personal_email"], timeout=30
    )
    assert str(mail["Subject"]).startswith("Invitation to Program Registration")
    text = text_body(mail)
    assert f"{system.gateway_url}/activate?token=" in text or "/activate?token=" in text
    assert "黃小明" in text


async def test_reimporting_the_same_roster_changes_nothing(system: Stack) -> None:
    number = new_student_no()
    rows = [roster_row(number)]
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        client.headers.update(bearer(await staff_token(client, "registry_officer")))
        first = (await client.post("/api/identity/admissions/import", json=rows)).json()
        second = (await client.post("/api/identity/admissions/import", json=rows)).json()
        corrected = (
            await client.post(
                "/api/identity/admissions/import", json=[roster_row(number, surname="Wang")]
            )
        ).json()
    assert (first["created"], second["unchanged"], corrected["updated"]) == (1, 1, 1)
    records = await read_topic(
        system.endpoints.kafka_bootstrap,
        "identity.events",
        lambda m: m.key == number.encode(),
        count=2,
        settle=2.0,
    )
    types = [Envelope.from_bytes(m.value).event_type for m in records]
    assert types == ["StudentAdmitted", "StudentParticularsUpdated"]
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        client.headers.update(bearer(await staff_token(client, "registry_officer")))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while loop.time() < deadline:
            found = await client.get(f"/api/registration/registrations/{number}")
            if found.status_code == 200 and found.json()["prefill"]["surname"] == "Wang":
                break
            await asyncio.sleep(0.2)
        assert found.json()["prefill"]["surname"] == "Wang"


async def test_bad_rows_are_refused_with_reasons_and_good_rows_import(system: Stack) -> None:
    good = roster_row(new_student_no())
    bad = roster_row("123", jupas_app_no="11112222", date_of_birth="31/02/2007")
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        client.headers.update(bearer(await staff_token(client, "registry_officer")))
        answer = await client.post("/api/identity/admissions/import", json=[bad, good])
        not_a_list = await client.post("/api/identity/admissions/import", json={"rows": 1})
    result = answer.json()
    assert (result["created"], result["rejected"]) == (1, 1)
    assert {(e["row"], e["field"]) for e in result["errors"]} == {
        (1, "student_no"),
        (1, "date_of_birth"),
    }
    assert not_a_list.status_code == 422
