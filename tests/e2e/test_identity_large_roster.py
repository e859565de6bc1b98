"""A whole intake's roster (10,000 rows) in one request, twice: each student is
created once and StudentAdmitted is published once per student.

Runs on a private stack (its own Kafka and MongoDB, identity alone): the other
services of the shared system would otherwise consume 10,000 admissions.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest
from opr_shared.events.envelope import Envelope
from opr_shared.testing.infra import StackFactory
from opr_shared.testing.journey import bearer, roster_row, staff_token
from opr_shared.testing.kafka import read_topic

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

ROWS = 10_000


async def test_importing_the_same_10000_row_roster_twice_admits_each_student_once(
    stack_factory: StackFactory,
) -> None:
    stack = stack_factory(own_infra=True, services=["identity"])
    rows = [
        roster_row(f"3{i:07d}", jupas_app_no=f"4{i:07d}", personal_email=f"s{i}@example.com")
        for i in range(ROWS)
    ]
    began = time.monotonic()
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=120) as client:
        client.headers.update(bearer(await staff_token(client, "registry_officer")))
        accepted = await client.post("/api/identity/admissions/import?background=true", json=rows)
        assert accepted.status_code == 202, accepted.text
        location = accepted.headers["Location"]
        seen_progress: set[int] = set()
        while True:
            job = (await client.get(location)).json()
            seen_progress.add(job["processed"])
            if job["status"] != "running":
                break
            assert time.monotonic() - began < 300, job
            await asyncio.sleep(1)
        assert job["status"] == "completed", job
        assert (job["total"], job["processed"], job["created"], job["rejected"]) == (
            ROWS,
            ROWS,
            ROWS,
            0,
        )
        # The caller saw the import move, not just start and end.
        assert any(0 < p < ROWS for p in seen_progress), seen_progress
        first_took = time.monotonic() - began

        again = await client.post("/api/identity/admissions/import", json=rows)
        assert again.status_code == 200, again.text
        body = again.json()
        assert (body["created"], body["updated"], body["unchanged"], body["rejected"]) == (
            0,
            0,
            ROWS,
            0,
        )

    records = await read_topic(
        stack.endpoints.kafka_bootstrap,
        "identity.events",
        lambda m: dict(m.headers).get("event_type") == b"StudentAdmitted",
        count=ROWS,
        timeout=180,
        settle=3.0,
    )
    per_student = Counter(Envelope.from_bytes(m.value).subject for m in records)
    assert len(per_student) == ROWS
    assert set(per_student.values()) == {1}
    print(f"first import {first_took:.0f}s, whole test {time.monotonic() - began:.0f}s")
