"""A service killed between its database commit and the publish loses nothing."""

from __future__ import annotations

import httpx
import pytest
from opr_shared.devstack.stack import Stack
from opr_shared.events.envelope import Envelope
from opr_shared.smtpsink import wait_for_mail
from opr_shared.testing.journey import (
    bearer,
    eventually_get,
    new_student_no,
    roster_row,
    staff_token,
)
from opr_shared.testing.kafka import read_topic

pytestmark = pytest.mark.e2e


async def test_identity_killed_after_commit_before_publish_delivers_after_restart(
    system: Stack,
) -> None:
    number = new_student_no()
    row = roster_row(number)
    # Identity runs without its relay: every commit stays in the outbox, as if
    # the process had died right after committing.
    system.restart_service("identity", extra_env={"OUTBOX_RELAY_ENABLED": "false"})
    try:
        async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
            client.headers.update(bearer(await staff_token(client, "registry_officer")))
            imported = await client.post("/api/identity/admissions/import?invite=true", json=[row])
            assert imported.json()["created"] == 1
        system.kill_service("identity")  # SIGKILL: no shutdown code runs

        nothing = await read_topic(
            system.endpoints.kafka_bootstrap,
            "identity.events",
            lambda m: m.key == number.encode(),
            timeout=3,
        )
        assert nothing == []
    finally:
        system.start_service("identity")

    records = await read_topic(
        system.endpoints.kafka_bootstrap,
        "identity.events",
        lambda m: m.key == number.encode(),
        count=2,
        timeout=60,
        settle=1.0,
    )
    assert [Envelope.from_bytes(m.value).event_type for m in records] == [
        "StudentAdmitted",
        "InvitationIssued",
    ]
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        client.headers.update(bearer(await staff_token(client, "registry_officer")))
        registration = await eventually_get(client, f"/api/registration/registrations/{number}")
        assert registration.status_code == 200
    assert system.maildir is not None
    mails = await wait_for_mail(system.maildir, lambda m: str(m["To"]) == row["personal_email"])
    assert mails is not None
