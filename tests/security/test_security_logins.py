"""Login abuse through the gateway: brute force meets the lockout (even the right
password is refused while locked, concurrent guesses all count), and the answers
never tell an unknown account from a wrong secret, for both kinds of login.

Timing is reported, not asserted (the machine is shared and slow): the medians of
"unknown account" and "known account, wrong password" go to the figures. The
property that keeps them close, that an unknown account costs the same password
verification, is proved by identity's unit tests
(``test_password_login_does_the_same_hash_work_for_an_unknown_account`` and
``test_the_dummy_hash_costs_what_a_real_one_does``).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

import httpx
import pytest
from opr_shared.testing.journey import new_student_no, roster_row

pytestmark = [pytest.mark.e2e, pytest.mark.security]

PASSWORD = "Kettle-Harbour-Violet-2026"
MAX_FAILURES = 5  # identity's default lockout: 5 failures in 15 minutes


async def new_staff(client: httpx.AsyncClient, cast: Any) -> tuple[str, str]:
    email = f"sec.lock.{uuid.uuid4().hex[:10]}@staff.university.example"
    made = await client.post(
        "/api/identity/staff",
        headers=cast.headers("admin"),
        json={"email": email, "role": "registry_officer", "password": PASSWORD},
    )
    assert made.status_code == 201, made.text
    return email, made.json()["staff_id"]


def jupas(row: dict[str, Any], **changes: str) -> dict[str, str]:
    body = {
        "jupas_app_no": row["jupas_app_no"],
        "last_name": row["surname"],
        "first_name": row["given_names"],
        "date_of_birth": row["date_of_birth"],
    }
    return {**body, **changes}


async def import_student(client: httpx.AsyncClient, cast: Any) -> dict[str, Any]:
    row = roster_row(new_student_no())
    imported = await client.post(
        "/api/identity/admissions/import", json=[row], headers=cast.headers("registry_officer")
    )
    assert imported.status_code == 200, imported.text
    return row


async def test_password_brute_force_meets_the_lockout(
    client: httpx.AsyncClient, cast: Any, figures: Any
) -> None:
    email, staff_id = await new_staff(client, cast)
    # Guesses sent together all count: a burst cannot slip past the limit.
    guesses = await asyncio.gather(
        *(
            client.post("/api/identity/sessions", json={"email": email, "password": f"guess-{i}"})
            for i in range(MAX_FAILURES + 3)
        )
    )
    assert {g.status_code for g in guesses} == {401}
    right = await client.post("/api/identity/sessions", json={"email": email, "password": PASSWORD})
    assert right.status_code == 401, "the right password must not work while locked"
    assert right.json() == guesses[0].json()
    audit = await client.get(
        "/api/identity/login-attempts",
        params={"account": f"staff:{staff_id}", "limit": 20},
        headers=cast.headers("admin"),
    )
    reasons = [a["reason"] for a in audit.json()]
    assert reasons[0] == "locked", reasons
    assert reasons.count("wrong_credentials") >= MAX_FAILURES, reasons
    figures.record(
        "logins.password_lockout",
        guesses=len(guesses),
        refused=sum(g.status_code == 401 for g in guesses),
        right_password_while_locked=right.status_code,
        audited_reasons=dict(sorted({r: reasons.count(r) for r in set(reasons)}.items())),
    )


async def test_jupas_brute_force_meets_the_lockout(
    client: httpx.AsyncClient, cast: Any, figures: Any
) -> None:
    row = await import_student(client, cast)
    for day in range(1, MAX_FAILURES + 2):
        wrong = await client.post(
            "/api/identity/sessions/jupas", json=jupas(row, date_of_birth=f"{day:02d}/01/2000")
        )
        assert wrong.status_code == 401
    right = await client.post("/api/identity/sessions/jupas", json=jupas(row))
    assert right.status_code == 401, "the right particulars must not work while locked"
    assert right.json() == {"detail": "access denied"}
    figures.record(
        "logins.jupas_lockout", guesses=MAX_FAILURES + 1, right_while_locked=right.status_code
    )


async def same_answer(client: httpx.AsyncClient, path: str, bodies: dict[str, Any]) -> None:
    answers = {name: await client.post(path, json=body) for name, body in bodies.items()}
    shapes = {
        name: (a.status_code, a.text, a.headers.get("www-authenticate"))
        for name, a in answers.items()
    }
    assert len(set(shapes.values())) == 1, shapes
    assert next(iter(shapes.values()))[0] == 401


async def test_answers_do_not_reveal_which_accounts_exist(
    client: httpx.AsyncClient, cast: Any
) -> None:
    email, _ = await new_staff(client, cast)
    row = await import_student(client, cast)
    not_activated = f"{row['student_no']}@connect.university.example"
    await same_answer(
        client,
        "/api/identity/sessions",
        {
            "unknown account": {
                "email": f"nobody.{uuid.uuid4().hex[:8]}@x.example",
                "password": "x",
            },
            "known account, wrong password": {"email": email, "password": "Wrong-Password-1"},
            "student not activated": {"email": not_activated, "password": PASSWORD},
            "malformed address": {"email": "not an address", "password": PASSWORD},
        },
    )
    await same_answer(
        client,
        "/api/identity/sessions/jupas",
        {
            "unknown application": jupas(row, jupas_app_no="00000001"),
            "wrong surname": jupas(row, last_name="Chan"),
            "wrong date of birth": jupas(row, date_of_birth="01/01/2001"),
            "malformed date": jupas(row, date_of_birth="2007-11-05"),
            "malformed number": jupas(row, jupas_app_no="12"),
        },
    )


async def test_login_timings_are_reported(
    client: httpx.AsyncClient, cast: Any, figures: Any
) -> None:
    email, _ = await new_staff(client, cast)
    rounds = 4  # below the lockout, so every known-account attempt checks the password

    async def timed(body: dict[str, str]) -> float:
        started = time.perf_counter()
        answer = await client.post("/api/identity/sessions", json=body)
        assert answer.status_code == 401
        return time.perf_counter() - started

    unknown: list[float] = []
    known: list[float] = []
    for i in range(rounds):
        unknown.append(
            await timed({"email": f"nobody.{i}.{uuid.uuid4().hex[:6]}@x.example", "password": "x"})
        )
        known.append(await timed({"email": email, "password": f"Wrong-Password-{i}"}))
    figures.record(
        "logins.timing_ms",
        rounds=rounds,
        unknown_account_median=round(statistics.median(unknown) * 1000, 1),
        wrong_password_median=round(statistics.median(known) * 1000, 1),
    )
