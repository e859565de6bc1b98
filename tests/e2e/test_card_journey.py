"""The card service in the whole system: a student imported through identity, the
registration and photo outcomes arriving on their producers' topics, then the card,
its slot, a rebooking, the print image and the collection through the public API."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from opr_shared.devstack.stack import Stack
from opr_shared.events.catalogue import PhotoApproved, RegistrationCompleted
from opr_shared.events.envelope import Envelope, EventPayload
from opr_shared.testing.journey import (
    add_collection_windows,
    bearer,
    jupas_token,
    new_student_no,
    roster_row,
    staff_token,
)
from opr_shared.testing.kafka import read_topic
from PIL import Image

pytestmark = pytest.mark.e2e


async def publish(bootstrap: str, student_no: str, *payloads: EventPayload) -> None:
    """Put events on their producers' topics, as registration and documents do."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for payload in payloads:
            envelope = Envelope.wrap(payload, subject=student_no, correlation_id=str(uuid.uuid4()))
            await producer.send_and_wait(
                envelope.topic,
                envelope.to_bytes(),
                key=student_no.encode(),
                headers=[(k, v.encode()) for k, v in envelope.headers().items()],
            )
    finally:
        await producer.stop()


def photo_approved(student_no: str) -> PhotoApproved:
    out = io.BytesIO()
    Image.new("RGB", (300, 400), (180, 40, 40)).save(out, format="JPEG")
    image = out.getvalue()
    return PhotoApproved(
        photo_id=uuid.uuid4(),
        student_no=student_no,
        approved_by="card.office",
        approved_at=datetime.now(UTC),
        card_image_jpeg_base64=base64.b64encode(image).decode(),
        card_image_sha256=hashlib.sha256(image).hexdigest(),
    )


async def until(client: httpx.AsyncClient, url: str, done: Any, timeout: float = 45) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        answer = await client.get(url)
        if answer.status_code == 200 and done(answer.json()):
            return answer.json()
        if loop.time() > deadline:
            raise AssertionError(f"{url}: {answer.status_code} {answer.text}")
        await asyncio.sleep(0.3)


async def test_a_completed_student_with_an_approved_photo_gets_a_card_and_collects_it(
    system: Stack,
) -> None:
    number = new_student_no()
    row = roster_row(number)
    day = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        registry = bearer(await staff_token(client, "registry_officer"))
        office = bearer(await staff_token(client, "card_office"))
        imported = await client.post(
            "/api/identity/admissions/import", json=[row], headers=registry
        )
        assert imported.status_code == 200, imported.text
        student = bearer(await jupas_token(client, row))

        await add_collection_windows(
            client, office, day, [("09:00", "10:00", 500), ("10:00", "11:00", 500)]
        )
        published = (await client.get("/api/card/schedule", headers=office)).json()

        await publish(
            system.endpoints.kafka_bootstrap,
            number,
            RegistrationCompleted(
                student_no=number,
                intake_year=2027,
                personal_email=row["personal_email"],
                outstanding=[],
                completed_at=datetime.now(UTC),
            ),
            photo_approved(number),
        )
        client.headers.update(student)
        me = await until(client, "/api/card/me", lambda b: b["slot"] is not None)
        assert me["status"] == "issued"
        card_no = me["card"]["card_no"]
        assert me["card"]["surname"] == "Wong"
        assert me["slot"]["slot_id"] == f"{day}-0900"

        slots = (await client.get("/api/card/me/slots")).json()["slots"]
        assert f"{day}-1000" in [s["slot_id"] for s in slots]
        moved = await client.post("/api/card/me/booking", json={"slot_id": f"{day}-1000"})
        assert moved.status_code == 200, moved.text

        client.headers.update(office)
        image = await client.get(f"/api/card/cards/{card_no}/image.png")
        assert image.status_code == 200
        assert image.content.startswith(b"\x89PNG")
        collected = await client.post(f"/api/card/cards/{card_no}/collected")
        assert collected.status_code == 200, collected.text

    records = await read_topic(
        system.endpoints.kafka_bootstrap,
        "card.events",
        lambda m: m.key == number.encode(),
        count=4,
        settle=1.0,
    )
    events = [Envelope.from_bytes(m.value) for m in records]
    assert [e.event_type for e in events] == [
        "CardIssued",
        "CardReadyForCollection",
        "CardReadyForCollection",
        "CardCollected",
    ]
    assert [e.payload["slot_id"] for e in events[1:3]] == [f"{day}-0900", f"{day}-1000"]
    assert events[1].payload["bring"] == published["bring"]
    assert events[1].payload["venue"] == published["venue"]
    assert {e.payload["card_no"] for e in events} == {card_no}
