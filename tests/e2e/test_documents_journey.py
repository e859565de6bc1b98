"""Documents through the public API: a student uploads five versions of a document
and a card photo; the registry verifies the latest, the card office approves the
photo; a downstream team sees every event on documents.events."""

from __future__ import annotations

import io

import httpx
import pytest
from opr_shared.devstack.stack import Stack
from opr_shared.events.catalogue import PhotoApproved
from opr_shared.events.envelope import Envelope
from opr_shared.testing.journey import (
    bearer,
    jupas_token,
    new_student_no,
    roster_row,
    staff_token,
    upload_when_admitted,
)
from opr_shared.testing.kafka import read_topic
from opr_shared.testing.samples import blank_pdf, face_photo
from PIL import Image

pytestmark = pytest.mark.e2e


async def admitted_student(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    number = new_student_no()
    row = roster_row(number)
    registry = await staff_token(client, "registry_officer")
    imported = await client.post(
        "/api/identity/admissions/import", json=[row], headers=bearer(registry)
    )
    assert imported.status_code == 200, imported.text
    return number, bearer(await jupas_token(client, row))


async def test_five_versions_one_in_the_queue_verified_and_announced(system: Stack) -> None:
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        number, student = await admitted_student(client)
        ids = []
        for pages in range(1, 6):
            answer = await upload_when_admitted(
                client,
                student,
                url="/api/documents/me/documents",
                data={"doc_type": "passport"},
                files={"file": (f"passport-{pages}.pdf", blank_pdf(pages), "application/pdf")},
            )
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["id"])

        officer = bearer(await staff_token(client, "registry_officer"))
        queue = await client.get("/api/documents/queue?kind=document&limit=500", headers=officer)
        assert queue.status_code == 200, queue.text
        mine = [i for i in queue.json()["items"] if i["student_no"] == number]
        assert [(i["id"], i["version"]) for i in mine] == [(ids[-1], 5)]

        link = await client.post(
            f"/api/documents/documents/{ids[-1]}/content-link", headers=officer
        )
        assert link.status_code == 200, link.text
        opened = await client.get(link.json()["url"])
        assert opened.status_code == 200
        assert opened.content == blank_pdf(5)

        verified = await client.post(
            f"/api/documents/documents/{ids[-1]}/verify",
            json={"expiry_date": "2035-01-31"},
            headers=officer,
        )
        assert verified.status_code == 200, verified.text

    records = await read_topic(
        system.endpoints.kafka_bootstrap,
        "documents.events",
        lambda m: m.key == number.encode(),
        count=6,
        settle=1.0,
    )
    events = [Envelope.from_bytes(m.value) for m in records]
    assert [(e.event_type, e.payload["version"]) for e in events] == [
        *[("DocumentUploaded", v) for v in range(1, 6)],
        ("DocumentVerified", 5),
    ]
    assert events[-1].payload["document_id"] == ids[-1]


async def test_a_photo_is_checked_at_once_and_approved_with_the_card_image(
    system: Stack,
) -> None:
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as client:
        number, student = await admitted_student(client)
        square = await upload_when_admitted(
            client,
            student,
            url="/api/documents/me/photo",
            files={"file": ("me.jpg", blank_pdf(1), "image/jpeg")},
        )
        assert square.status_code == 415  # a PDF named .jpg is still a PDF
        # The file is refused before the admission is looked up: the 415 does not
        # say the admission has reached the documents service yet.
        answer = await upload_when_admitted(
            client,
            student,
            url="/api/documents/me/photo",
            files={"file": ("me.jpg", face_photo(), "image/jpeg")},
        )
        assert answer.status_code == 201, answer.text
        card_office = bearer(await staff_token(client, "card_office"))
        approved = await client.post(
            f"/api/documents/photos/{answer.json()['id']}/approve", headers=card_office
        )
        assert approved.status_code == 200, approved.text

    records = await read_topic(
        system.endpoints.kafka_bootstrap,
        "documents.events",
        lambda m: m.key == number.encode(),
        count=2,
        settle=1.0,
    )
    events = [Envelope.from_bytes(m.value) for m in records]
    assert [e.event_type for e in events] == ["PhotoSubmitted", "PhotoApproved"]
    approval = PhotoApproved.model_validate(events[1].payload)
    with Image.open(io.BytesIO(approval.card_image())) as card:
        assert card.size == (300, 375)
