"""Test data and polling for journeys through the running system."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from opr_shared.demo import DEMO_STAFF, DEMO_STAFF_PASSWORD

__all__ = ["DEMO_STAFF", "DEMO_STAFF_PASSWORD"]  # re-exported for tests


def roster_row(student_no: str, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "student_no": student_no,
        "jupas_app_no": student_no[::-1],
        "surname": "Wong",
        "given_names": "Siu Ming",
        "chinese_name": "黃小明",
        "date_of_birth": "05/11/2007",
        "personal_email": f"s{student_no}@example.com",
        "mobile": "+852 6123 4567",
        "programme_code": "BBA",
        "programme_name": "Bachelor of Business Administration",
        "intake_year": 2027,
        "admission_route": "JUPAS",
    }
    row.update(overrides)
    return row


def new_student_no() -> str:
    return f"2{uuid.uuid4().int % 10**7:07d}"


async def eventually_get(
    client: httpx.AsyncClient, url: str, timeout: float = 30
) -> httpx.Response:
    """GET ``url`` until it answers 200 (the consumer is asynchronous)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        response = await client.get(url)
        if response.status_code == 200 or loop.time() > deadline:
            return response
        await asyncio.sleep(0.2)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def staff_token(client: httpx.AsyncClient, role: str) -> str:
    """Log in as the demo staff member with ``role`` (email and password)."""
    answer = await client.post(
        "/api/identity/sessions", json={"email": DEMO_STAFF[role], "password": DEMO_STAFF_PASSWORD}
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


async def jupas_token(client: httpx.AsyncClient, row: dict[str, Any]) -> str:
    """Log in as an imported JUPAS entrant (application no., names, date of birth)."""
    answer = await client.post(
        "/api/identity/sessions/jupas",
        json={
            "jupas_app_no": row["jupas_app_no"],
            "last_name": row["surname"],
            "first_name": row["given_names"],
            "date_of_birth": row["date_of_birth"],
        },
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


HONG_KONG = ZoneInfo("Asia/Hong_Kong")


async def add_collection_windows(
    client: httpx.AsyncClient,
    office: dict[str, str],
    day: str,
    windows: list[tuple[str, str, int]],
) -> None:
    """Add ``windows`` (start, end, capacity; Hong Kong times) on ``day`` to the card
    office's collection schedule, keeping every slot already published: the schedule is
    shared by everything running on the stack, and booked slots may not be dropped."""
    current = await client.get("/api/card/schedule", headers=office)
    assert current.status_code == 200, current.text
    schedule = current.json()
    days: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for slot in schedule["slots"]:
        starts = datetime.fromisoformat(slot["starts_at"]).astimezone(HONG_KONG)
        ends = datetime.fromisoformat(slot["ends_at"]).astimezone(HONG_KONG)
        days[starts.date().isoformat()][f"{starts:%H:%M}"] = {
            "start": f"{starts:%H:%M}",
            "end": f"{ends:%H:%M}",
            "capacity": slot["capacity"],
        }
    for start, end, capacity in windows:
        days[day].setdefault(start, {"start": start, "end": end, "capacity": capacity})
    put = await client.put(
        "/api/card/schedule",
        headers=office,
        json={
            "venue": schedule["venue"] or "Student Card Office, Room 1101, Academic Building",
            "bring": schedule["bring"] or ["Hong Kong Identity Card or passport"],
            "days": [
                {"date": d, "windows": sorted(w.values(), key=lambda x: x["start"])}
                for d, w in sorted(days.items())
            ],
        },
    )
    assert put.status_code == 200, put.text


def form_answers(**overrides: Any) -> dict[str, Any]:
    """A complete registration form for a Hong Kong permanent resident (the roster row
    of :func:`roster_row` gives the names and date of birth), ready to submit."""
    answers: dict[str, Any] = {
        "gender": "female",
        "nationality": "CHN",
        "residency": "hk_permanent",
        "hkid_number": "A123456(3)",
        "correspondence_address": {
            "lines": ["1 Clear Water Bay Road"],
            "country_or_region": "HK",
        },
        "emergency_contact": {
            "name": "Wong Tai Man",
            "relationship": "Father",
            "phone": "61234567",
        },
        "declaration": True,
    }
    answers.update(overrides)
    return answers


async def upload_when_admitted(
    client: httpx.AsyncClient, headers: dict[str, str], timeout: float = 30, **request: Any
) -> httpx.Response:
    """POST an upload; StudentAdmitted reaches documents asynchronously, so it answers
    409 until then: try again until another answer or ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        answer = await client.post(headers=headers, **request)
        if answer.status_code != 409 or loop.time() > deadline:
            return answer
        await asyncio.sleep(0.3)
