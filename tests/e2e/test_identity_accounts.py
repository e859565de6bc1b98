"""Identity through the one origin, as students, staff and other services meet it:
logins A and B, activation from the invitation e-mail, roles, and tokens that
every service verifies from identity's published keys."""

from __future__ import annotations

import re

import httpx
import pytest
from opr_shared.auth import Role, generate_private_key, sign_token
from opr_shared.devstack.stack import Stack
from opr_shared.events.envelope import Envelope
from opr_shared.smtpsink import text_body, wait_for_mail
from opr_shared.testing.journey import (
    DEMO_STAFF,
    bearer,
    jupas_token,
    new_student_no,
    roster_row,
    staff_token,
)
from opr_shared.testing.kafka import read_topic

pytestmark = pytest.mark.e2e

DENIED = (401, {"detail": "access denied"})
PASSWORD = "violet kettle 42 harbour"

# Student-facing GET endpoints of every service (SPEC §6); each must refuse a forged token.
PROTECTED = [
    "/api/identity/me",
    "/api/registration/me",
    "/api/documents/me/documents",
    "/api/notifier/me/notifications",
    "/api/card/me",
]


async def import_students(client: httpx.AsyncClient, *rows: dict[str, object]) -> None:
    headers = bearer(await staff_token(client, "registry_officer"))
    answer = await client.post(
        "/api/identity/admissions/import?invite=true", json=list(rows), headers=headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] == len(rows)


async def test_demo_staff_log_in_with_their_roles(system: Stack) -> None:
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        for role, email in DEMO_STAFF.items():
            me = await client.get(
                "/api/identity/me", headers=bearer(await staff_token(client, role))
            )
            assert me.status_code == 200, me.text
            assert (me.json()["role"], me.json()["email"]) == (role, email)
        wrong = await client.post(
            "/api/identity/sessions",
            json={"email": DEMO_STAFF["admin"], "password": "not the password"},
        )
        assert (wrong.status_code, wrong.json()) == DENIED


async def test_failed_jupas_logins_all_look_the_same_even_when_locked(system: Stack) -> None:
    row = roster_row(new_student_no())
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        await import_students(client, row)
        good = {
            "jupas_app_no": row["jupas_app_no"],
            "last_name": str(row["surname"]).upper(),
            "first_name": str(row["given_names"]).replace(" ", "").lower(),
            "date_of_birth": row["date_of_birth"],
        }
        assert (await client.post("/api/identity/sessions/jupas", json=good)).status_code == 200
        wrong_format = good | {"date_of_birth": "2007-11-05"}
        wrong_name = good | {"last_name": "Chan"}
        unknown = good | {"jupas_app_no": "00000001"}
        answers = []
        for body in [wrong_format, wrong_name, unknown, wrong_name, wrong_name, wrong_name]:
            answers.append(await client.post("/api/identity/sessions/jupas", json=body))
        # Five failures on the account lock it: the right particulars are now refused too.
        locked = await client.post("/api/identity/sessions/jupas", json=good)
        for answer in [*answers, locked]:
            assert (answer.status_code, answer.json()) == DENIED
            assert answer.content == answers[0].content


async def test_activation_from_the_invitation_email_then_login_b(system: Stack) -> None:
    number = new_student_no()
    row = roster_row(number)
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        await import_students(client, row)
        assert system.maildir is not None
        mail = await wait_for_mail(
            system.maildir, lambda m: str(m["To"]) == row["personal_email"], timeout=60
        )
        found = re.search(r"/activate\?token=([A-Za-z0-9_-]+)", text_body(mail))
        assert found is not None
        token = found.group(1)

        weak = await client.post(
            "/api/identity/accounts/activate", json={"token": token, "password": "password"}
        )
        assert weak.status_code == 422
        assert "at least 10 characters" in weak.json()["detail"]
        done = await client.post(
            "/api/identity/accounts/activate", json={"token": token, "password": PASSWORD}
        )
        assert done.status_code == 200, done.text
        address = done.json()["university_email"]
        assert address == f"{number}@connect.university.example"
        reused = await client.post(
            "/api/identity/accounts/activate", json={"token": token, "password": PASSWORD}
        )
        assert reused.status_code == 409

        login = await client.post(
            "/api/identity/sessions", json={"email": address, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        me = await client.get("/api/identity/me", headers=bearer(login.json()["access_token"]))
        assert (me.json()["student_no"], me.json()["account_status"]) == (number, "active")

    records = await read_topic(
        system.endpoints.kafka_bootstrap,
        "identity.events",
        lambda m: (
            m.key == number.encode() and dict(m.headers).get("event_type") == b"AccountActivated"
        ),
        timeout=30,
        settle=1.0,
    )
    assert len(records) == 1
    assert Envelope.from_bytes(records[0].value).payload["university_email"] == address


async def test_a_student_token_cannot_call_staff_endpoints(system: Stack) -> None:
    row = roster_row(new_student_no())
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        await import_students(client, row)
        student = bearer(await jupas_token(client, row))
        for method, path in [
            ("POST", "/api/identity/admissions/import"),
            ("POST", "/api/identity/invitations"),
            ("POST", "/api/identity/signing-keys/rotate"),
            ("GET", "/api/identity/login-attempts"),
        ]:
            answer = await client.request(method, path, json=[], headers=student)
            assert answer.status_code == 403, (path, answer.text)


async def test_a_token_signed_by_another_key_is_refused_by_every_service(system: Stack) -> None:
    row = roster_row(new_student_no())
    forged = sign_token(
        generate_private_key(),
        "not-identitys-key",
        subject=str(row["student_no"]),
        role=Role.STUDENT,
        student_no=str(row["student_no"]),
        ttl_seconds=600,
    )
    checked = []
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        await import_students(client, row)
        genuine = bearer(await jupas_token(client, row))
        for path in PROTECTED:
            refused = await client.get(path, headers=bearer(forged))
            if refused.status_code == 404 and refused.json() == {"detail": "Not Found"}:
                continue  # the service does not offer this endpoint (yet)
            assert refused.status_code == 401, (path, refused.text)
            # The same request with identity's token is not refused for its token.
            assert (await client.get(path, headers=genuine)).status_code != 401, path
            checked.append(path)
    assert "/api/identity/me" in checked
