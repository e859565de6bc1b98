"""Identity on real MongoDB and Kafka servers: import, invitation, activation, both
logins, lockout, audit, staff roles and TOTP, keys."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pyotp
import pytest
from fastapi import FastAPI
from identity.domain.invitations import hash_token
from identity.handlers.imports import STALLED_AFTER
from identity.main import create_app
from identity.settings import Settings
from identity.store import LOGIN_ATTEMPTS, ROSTER_IMPORTS, STAFF_USERS, STUDENTS
from opr_shared.auth import Role, generate_private_key, sign_token
from opr_shared.devstack.stack import with_direct_connection
from opr_shared.localinfra import Endpoints
from opr_shared.store.mongo import OUTBOX
from opr_shared.testing.journey import (
    DEMO_STAFF,
    DEMO_STAFF_PASSWORD,
    bearer,
    jupas_token,
    new_student_no,
    roster_row,
    staff_token,
)

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
DENIED = {"detail": "access denied"}


def settings_for(infra: Endpoints, **overrides: Any) -> Settings:
    suffix = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "environment": "test",
        "mongodb_uri": with_direct_connection(infra.mongodb_uri),
        "mongodb_database": f"identity_{suffix}",
        "kafka_bootstrap_servers": infra.kafka_bootstrap,
        "kafka_group_id": f"identity-{suffix}",
        # Nothing of these tests should reach the other services of a running system.
        "outbox_relay_enabled": False,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8192,
        "argon2_parallelism": 1,
        "lockout_max_failures": 3,
        "signing_key_cache_seconds": 0,
        "public_base_url": "http://portal.test",
    }
    values.update(overrides)
    return Settings(**values)


class Running:
    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client

    @property
    def db(self) -> Any:
        return self.app.state.identity.runtime.db


@pytest.fixture
async def identity(infra: Endpoints) -> AsyncIterator[Running]:
    app = create_app(settings_for(infra))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://identity") as client:
            yield Running(app, client)


async def registry(identity: Running) -> dict[str, str]:
    return bearer(await staff_token(identity.client, "registry_officer"))


async def import_and_invite(identity: Running, **overrides: Any) -> dict[str, Any]:
    row = roster_row(new_student_no(), **overrides)
    answer = await identity.client.post(
        "/api/identity/admissions/import?invite=true", json=[row], headers=await registry(identity)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] == 1
    return row


async def activation_token(identity: Running, student_no: str) -> str:
    """The token as the invitation e-mail carries it (read back from the outbox)."""
    rows = identity.db[OUTBOX].find({"key": student_no, "event_type": "InvitationIssued"})
    urls = [
        json.loads(bytes(r["value"]))["payload"]["activation_url"]
        async for r in rows.sort("seq", -1)
    ]
    return str(urls[0].split("token=")[1])


async def test_activation_gives_the_university_address_and_the_token_is_single_use(
    identity: Running,
) -> None:
    row = await import_and_invite(identity)
    number = row["student_no"]
    token = await activation_token(identity, number)

    weak = await identity.client.post(
        "/api/identity/accounts/activate", json={"token": token, "password": "short"}
    )
    assert weak.status_code == 422
    assert "at least 10 characters" in weak.json()["detail"]

    done = await identity.client.post(
        "/api/identity/accounts/activate", json={"token": token, "password": PASSWORD}
    )
    assert done.status_code == 200, done.text
    activated = done.json()
    assert {k: activated[k] for k in ("student_no", "university_email", "token_type")} == {
        "student_no": number,
        "university_email": f"{number}@connect.university.example",
        "token_type": "bearer",
    }
    # The activation signs the student in: no second password (and hash) needed.
    assert activated["expires_in"] == 900
    claims = jwt.decode(activated["access_token"], options={"verify_signature": False})
    assert (claims["role"], claims["sub"], claims["student_no"]) == ("student", number, number)
    signed_in = await identity.client.get(
        "/api/identity/me", headers=bearer(activated["access_token"])
    )
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["account_status"] == "active"
    audit = await identity.db[LOGIN_ATTEMPTS].find_one(
        {"account": f"student:{number}", "method": "activation"}
    )
    assert audit is not None
    assert (audit["outcome"], audit["reason"]) == ("success", None)
    assert number not in audit["identifier"]
    again = await identity.client.post(
        "/api/identity/accounts/activate", json={"token": token, "password": PASSWORD + "!"}
    )
    assert again.status_code == 409
    assert "already been used" in again.json()["detail"]

    events = [
        r["event_type"] async for r in identity.db[OUTBOX].find({"key": number}).sort("seq", 1)
    ]
    assert events == ["StudentAdmitted", "InvitationIssued", "AccountActivated"]

    login = await identity.client.post(
        "/api/identity/sessions",
        json={"email": f"{number}@connect.university.example", "password": PASSWORD},
    )
    assert login.status_code == 200, login.text
    body = login.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    me = await identity.client.get("/api/identity/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["account_status"] == "active"
    assert me.json()["university_email"] == f"{number}@connect.university.example"
    stored = await identity.db[STUDENTS].find_one({"_id": number})
    assert stored["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in str(stored)


async def test_an_activation_whose_session_cannot_start_still_reports_the_account_active(
    identity: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = await import_and_invite(identity)
    number = row["student_no"]
    token = await activation_token(identity, number)
    authenticator = identity.app.state.identity.authenticator

    async def unavailable(*_: Any) -> Any:
        raise RuntimeError("signing keys unavailable")

    monkeypatch.setattr(authenticator, "sign_in_activated", unavailable)
    done = await identity.client.post(
        "/api/identity/accounts/activate", json={"token": token, "password": PASSWORD}
    )
    # The link is used up: an error here would send the student back to a dead link.
    assert done.status_code == 200, done.text
    assert done.json()["university_email"] == f"{number}@connect.university.example"
    assert done.json()["access_token"] is None
    monkeypatch.undo()
    login = await identity.client.post(
        "/api/identity/sessions",
        json={"email": f"{number}@connect.university.example", "password": PASSWORD},
    )
    assert login.status_code == 200, login.text


async def test_expired_and_replaced_activation_tokens_are_refused(identity: Running) -> None:
    row = await import_and_invite(identity)
    number = row["student_no"]
    first = await activation_token(identity, number)
    reinvite = await identity.client.post(
        "/api/identity/invitations",
        json={"student_nos": [number]},
        headers=await registry(identity),
    )
    assert reinvite.json() == {"invited": 1}
    second = await activation_token(identity, number)
    assert second != first
    replaced = await identity.client.post(
        "/api/identity/accounts/activate", json={"token": first, "password": PASSWORD}
    )
    assert replaced.status_code == 400
    assert "not valid" in replaced.json()["detail"]

    await identity.db[STUDENTS].update_one(
        {"_id": number},
        {"$set": {"invitation.expires_at": datetime.now(UTC) - timedelta(seconds=1)}},
    )
    expired = await identity.client.post(
        "/api/identity/accounts/activate", json={"token": second, "password": PASSWORD}
    )
    assert expired.status_code == 410
    assert "expired" in expired.json()["detail"]
    doc = await identity.db[STUDENTS].find_one({"_id": number})
    assert doc["status"] == "admitted"
    assert doc["invitation"]["token_hash"] == hash_token(second)


async def test_every_failed_jupas_login_gets_the_same_answer_and_the_account_locks(
    identity: Running,
) -> None:
    row = await import_and_invite(identity, surname="Chan", given_names="Tai Man")
    login = "/api/identity/sessions/jupas"
    good = {
        "jupas_app_no": row["jupas_app_no"],
        "last_name": "  CHAN ",
        "first_name": "taiman",
        "date_of_birth": row["date_of_birth"],
    }
    ok = await identity.client.post(login, json=good)
    assert ok.status_code == 200, ok.text
    claims = jwt.decode(ok.json()["access_token"], options={"verify_signature": False})
    assert (claims["role"], claims["student_no"], claims["sub"]) == (
        "student",
        row["student_no"],
        row["student_no"],
    )

    attempts = [
        good | {"date_of_birth": "2007-11-05"},  # wrong format
        good | {"last_name": "Chen"},  # wrong name
        good | {"jupas_app_no": "99999999"},  # unknown application number
    ]
    answers = [await identity.client.post(login, json=a) for a in attempts]
    # Third failure on this account (two above count; the unknown number has no account).
    third = await identity.client.post(login, json=good | {"first_name": "Siu Ming"})
    locked = await identity.client.post(login, json=good)  # right particulars, locked account
    for answer in [*answers, third, locked]:
        assert (answer.status_code, answer.json()) == (401, DENIED)
        assert answer.headers.get("content-length") == answers[0].headers.get("content-length")

    audit = [
        doc
        async for doc in identity.db[LOGIN_ATTEMPTS].find({"method": "jupas"}).sort("at", 1)
        if doc["identifier"].endswith(row["jupas_app_no"][-3:]) or doc["account"] is None
    ]
    reasons = [doc["reason"] for doc in audit]
    assert reasons[-5:] == [
        "bad_format",
        "wrong_credentials",
        "unknown_account",
        "wrong_credentials",
        "locked",
    ]
    for doc in audit:
        assert row["jupas_app_no"] not in str(doc)
        assert "Chan" not in str(doc)
        assert "05/11/2007" not in str(doc)


async def test_staff_endpoints_need_a_staff_role_and_a_token_from_identity(
    identity: Running,
) -> None:
    row = await import_and_invite(identity)
    student = bearer(await jupas_token(identity.client, row))
    imp = "/api/identity/admissions/import"
    assert (await identity.client.post(imp, json=[])).status_code == 401
    assert (await identity.client.post(imp, json=[], headers=student)).status_code == 403
    assert (
        await identity.client.post("/api/identity/invitations", headers=student)
    ).status_code == 403
    card = bearer(await staff_token(identity.client, "card_office"))
    assert (await identity.client.post(imp, json=[], headers=card)).status_code == 403

    forged = sign_token(
        generate_private_key(),
        "someone-elses-key",
        subject="staff-x",
        role=Role.ADMIN,
        ttl_seconds=300,
    )
    refused = await identity.client.post(imp, json=[], headers=bearer(forged))
    assert refused.status_code == 401
    assert (
        await identity.client.get("/api/identity/me", headers=bearer(forged))
    ).status_code == 401


@pytest.fixture
async def sealing_identity(infra: Endpoints) -> AsyncIterator[Running]:
    """Identity as deployed: a passphrase protects keys and TOTP secrets at rest."""
    app = create_app(settings_for(infra, signing_key_passphrase="a passphrase for the tests"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://identity") as client:
            yield Running(app, client)


async def test_staff_totp_enrolment_then_login_needs_a_fresh_code(
    sealing_identity: Running,
) -> None:
    identity = sealing_identity
    email, role = DEMO_STAFF["admin"], "admin"
    headers = bearer(await staff_token(identity.client, role))
    created = await identity.client.post(
        "/api/identity/staff",
        json={
            "email": "it.officer@staff.university.example",
            "role": "registry_officer",
            "password": "Registry-Pass-2026",
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    login = {"email": "it.officer@staff.university.example", "password": "Registry-Pass-2026"}
    officer = await identity.client.post("/api/identity/sessions", json=login)
    assert officer.status_code == 200
    officer_headers = bearer(officer.json()["access_token"])

    enrol = await identity.client.post("/api/identity/staff/me/totp", headers=officer_headers)
    assert enrol.status_code == 200
    totp = pyotp.TOTP(enrol.json()["secret"])
    wrong = await identity.client.post(
        "/api/identity/staff/me/totp/confirm", json={"code": "000000"}, headers=officer_headers
    )
    assert wrong.status_code == 400
    confirmed = await identity.client.post(
        "/api/identity/staff/me/totp/confirm",
        json={"code": totp.at(time.time() - 30)},
        headers=officer_headers,
    )
    assert confirmed.status_code == 204
    stored = await identity.db[STAFF_USERS].find_one({"email": login["email"]})
    assert stored["totp"]["confirmed"] is True
    assert enrol.json()["secret"] not in str(stored)  # sealed at rest

    without = await identity.client.post("/api/identity/sessions", json=login)
    assert (without.status_code, without.json()) == (401, DENIED)
    code = totp.now()
    with_code = await identity.client.post("/api/identity/sessions", json=login | {"totp": code})
    assert with_code.status_code == 200, with_code.text
    replayed = await identity.client.post("/api/identity/sessions", json=login | {"totp": code})
    assert replayed.status_code == 401
    me = await identity.client.get(
        "/api/identity/me", headers=bearer(with_code.json()["access_token"])
    )
    assert me.json()["role"] == "registry_officer"
    assert me.json()["totp_enabled"] is True
    # A demo staff member without TOTP still logs in with the password only.
    plain = await identity.client.post(
        "/api/identity/sessions", json={"email": email, "password": DEMO_STAFF_PASSWORD}
    )
    assert plain.status_code == 200


async def test_key_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key(
    identity: Running,
) -> None:
    admin = bearer(await staff_token(identity.client, "admin"))
    old_kid = jwt.get_unverified_header(admin["Authorization"].split()[1])["kid"]
    rotated = await identity.client.post("/api/identity/signing-keys/rotate", headers=admin)
    assert rotated.status_code == 200, rotated.text
    new_kid = rotated.json()["kid"]
    assert new_kid != old_kid
    jwks = (await identity.client.get("/api/identity/.well-known/jwks.json")).json()
    assert {k["kid"] for k in jwks["keys"]} >= {old_kid, new_kid}
    assert all("d" not in k for k in jwks["keys"])  # public halves only
    assert (await identity.client.get("/api/identity/me", headers=admin)).status_code == 200
    fresh = await staff_token(identity.client, "admin")
    assert jwt.get_unverified_header(fresh)["kid"] == new_kid
    me = await identity.client.get("/api/identity/me", headers=bearer(fresh))
    assert me.status_code == 200, me.text


async def test_csv_roster_and_background_import_with_progress(identity: Running) -> None:
    headers = await registry(identity)
    rows = [roster_row(new_student_no()) for _ in range(3)]
    columns = list(rows[0])
    lines = [",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]
    lines.append(lines[1].replace(rows[0]["student_no"], "12"))  # a bad student number
    csv_text = "\n".join(lines) + "\n"
    answer = await identity.client.post(
        "/api/identity/admissions/import",
        content=csv_text.encode(),
        headers=headers | {"content-type": "text/csv"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["created"], body["rejected"]) == (3, 1)
    assert body["errors"][0]["row"] == 4

    missing = await identity.client.post(
        "/api/identity/admissions/import",
        content=b"student_no,surname\n1,2\n",
        headers=headers | {"content-type": "text/csv"},
    )
    assert missing.status_code == 400
    assert "given_names" in missing.json()["detail"]

    more = [roster_row(new_student_no()) for _ in range(5)]
    accepted = await identity.client.post(
        "/api/identity/admissions/import?background=true", json=more + rows, headers=headers
    )
    assert accepted.status_code == 202, accepted.text
    location = accepted.headers["Location"]
    # The answer is the job's progress record, as GET at the Location gives it.
    started = accepted.json()
    assert location.endswith(started["import_id"])
    assert started["total"] == 8
    assert started["status"] in ("running", "completed")
    deadline = time.monotonic() + 60
    while True:
        job = (await identity.client.get(location, headers=headers)).json()
        if job["status"] != "running" or time.monotonic() > deadline:
            break
    assert job["status"] == "completed"
    assert (job["total"], job["processed"], job["created"], job["unchanged"]) == (8, 8, 5, 3)


async def test_a_background_import_whose_process_died_is_reported_failed(
    identity: Running,
) -> None:
    headers = await registry(identity)
    imports = identity.app.state.identity.imports
    # A job as a killed process leaves it: running, not moved for a long time.
    stalled = await imports.start(total=10, started_by="registry1")
    long_ago = datetime.now(UTC) - STALLED_AFTER - timedelta(minutes=1)
    await identity.db[ROSTER_IMPORTS].update_one(
        {"_id": stalled}, {"$set": {"processed": 4, "updated_at": long_ago}}
    )
    moving = await imports.start(total=10, started_by="registry1")

    job = (
        await identity.client.get(f"/api/identity/admissions/imports/{stalled}", headers=headers)
    ).json()
    assert (job["status"], job["processed"]) == ("failed", 4)
    assert "importing the same roster again" in job["failure"]
    fresh = (
        await identity.client.get(f"/api/identity/admissions/imports/{moving}", headers=headers)
    ).json()
    assert fresh["status"] == "running"
