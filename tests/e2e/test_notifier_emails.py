"""Notifier in the whole system: real Kafka redelivery, the invitation e-mail and the inbox."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from opr_shared.devstack.stack import Stack
from opr_shared.events.catalogue import InvitationIssued
from opr_shared.events.envelope import Envelope
from opr_shared.smtpsink import envelope_recipients, read_mailbox, text_body, wait_for_mail
from opr_shared.testing.journey import (
    bearer,
    jupas_token,
    new_student_no,
    roster_row,
    staff_token,
)

pytestmark = pytest.mark.e2e


async def test_an_invitation_published_three_times_is_emailed_once(system: Stack) -> None:
    assert system.maildir is not None
    number = new_student_no()
    address = f"redelivered.{uuid.uuid4().hex[:8]}@example.com"
    envelope = Envelope.wrap(
        InvitationIssued(
            student_no=number,
            personal_email=address,
            surname="LEE",
            given_names="Ka Yan",
            chinese_name="李嘉欣",
            activation_url="https://portal.example/activate?token=e2e",
            activation_expires_at=datetime.now(UTC) + timedelta(days=14),
            intake_year=2027,
            invitation_no=1,
        ),
        subject=number,
        correlation_id=str(uuid.uuid4()),
    )
    producer = AIOKafkaProducer(bootstrap_servers=system.endpoints.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        headers = [(k, v.encode()) for k, v in envelope.headers().items()]
        for _ in range(3):
            await producer.send_and_wait(
                envelope.topic, envelope.to_bytes(), key=envelope.key, headers=headers
            )
    finally:
        await producer.stop()

    mail = await wait_for_mail(system.maildir, lambda m: address in envelope_recipients(m), 60)
    assert "李嘉欣 同學" in text_body(mail)
    await asyncio.sleep(3)  # time for any copy to arrive
    copies = [m for m in read_mailbox(system.maildir) if address in envelope_recipients(m)]
    assert len(copies) == 1


async def test_the_invitation_reaches_the_mailbox_and_the_inbox(system: Stack) -> None:
    assert system.maildir is not None
    number = new_student_no()
    row = roster_row(number, personal_email=f"inbox.{uuid.uuid4().hex[:8]}@example.com")
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        registry = bearer(await staff_token(client, "registry_officer"))
        imported = await client.post(
            "/api/identity/admissions/import?invite=true", json=[row], headers=registry
        )
        assert imported.status_code == 200, imported.text
        mail = await wait_for_mail(
            system.maildir, lambda m: row["personal_email"] in envelope_recipients(m), 60
        )
        body = text_body(mail)
        assert "Invitation to Program Registration" in " ".join(str(mail["Subject"]).split())
        assert "Dear Siu Ming Wong," in body
        assert "黃小明 同學" in body
        assert "/activate" in body or "activation" in body.lower()

        headers = bearer(await jupas_token(client, row))
        inbox = (await client.get("/api/notifier/me/notifications", headers=headers)).json()
        [item] = [i for i in inbox if i["template"] == "invitation"]
        assert item["read"] is False
        marked = await client.post(
            f"/api/notifier/me/notifications/{item['id']}/read", headers=headers
        )
        assert marked.json()["read"] is True
