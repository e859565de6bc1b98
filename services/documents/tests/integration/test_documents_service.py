"""The documents service in-process on real MongoDB and S3: StudentAdmitted in
through its consumer, uploads and reviews through its HTTP API, events out in its
outbox, files in its bucket."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from documents.domain.photo import PhotoSpec, card_image
from documents.handlers.orphans import OrphanSweeper
from documents.main import create_app
from documents.settings import Settings
from documents.store import CARD_IMAGE, CONTENT_LINKS, DOCUMENTS, OWNERS, PHOTOS
from fastapi import FastAPI
from opr_shared.auth import (
    Role,
)
from opr_shared.events.catalogue import (
    AdmissionRoute,
    FormSubmitted,
    PhotoApproved,
    StudentAdmitted,
    example_payload,
)
from opr_shared.events.envelope import Envelope
from opr_shared.localinfra import Endpoints
from opr_shared.messaging.consumer import Outcome, Record
from opr_shared.runtime import ServiceRuntime
from opr_shared.store.mongo import OUTBOX, STAFF_AUDIT
from opr_shared.testing.service import TestSigner, isolated_settings, serve_in_process
from PIL import Image

pytestmark = pytest.mark.integration

SIGNER = TestSigner()
MAX_DOCUMENT_BYTES = 300_000


def auth(role: Role, student_no: str | None = None) -> dict[str, str]:
    return SIGNER.headers(role, student_no)


def officer() -> dict[str, str]:
    # Minted when used: a token made at import would expire during a long suite.
    return auth(Role.REGISTRY_OFFICER)


def card_office() -> dict[str, str]:
    return auth(Role.CARD_OFFICE)


def new_student_no() -> str:
    return f"2{uuid.uuid4().int % 10**7:07d}"


@dataclass
class DocumentsService:
    app: FastAPI
    runtime: ServiceRuntime
    http: httpx.AsyncClient

    async def admit(self, student_no: str, intake_year: int = 2027) -> None:
        payload = StudentAdmitted(
            student_no=student_no,
            surname="Wong",
            given_names="Siu Ming",
            date_of_birth=date(2008, 11, 5),
            personal_email="sm.wong@example.com",
            mobile="+85261234567",
            programme_code="BBA",
            programme_name="Bachelor of Business Administration",
            intake_year=intake_year,
            admission_route=AdmissionRoute.JUPAS,
        )
        envelope = Envelope.wrap(payload, subject=student_no, correlation_id="test")
        record = Record(
            topic=envelope.topic,
            partition=0,
            offset=0,
            key=student_no.encode(),
            value=envelope.to_bytes(),
            headers={k: v.encode() for k, v in envelope.headers().items()},
        )
        outcome = await self.runtime.consumer.handle(record, dead_letter_on_failure=False)
        assert outcome is Outcome.HANDLED

    async def upload(
        self,
        student_no: str,
        data: bytes,
        doc_type: str = "passport",
        filename: str = "passport.pdf",
    ) -> httpx.Response:
        return await self.http.post(
            "/api/documents/me/documents",
            data={"doc_type": doc_type},
            files={"file": (filename, data, "application/octet-stream")},
            headers=auth(Role.STUDENT, student_no),
        )

    async def submit_photo(self, student_no: str, data: bytes) -> httpx.Response:
        return await self.http.post(
            "/api/documents/me/photo",
            files={"file": ("me.jpg", data, "image/jpeg")},
            headers=auth(Role.STUDENT, student_no),
        )

    async def published(self, student_no: str) -> list[Envelope]:
        rows = self.runtime.db[OUTBOX].find({"key": student_no}).sort("seq", 1)
        return [Envelope.from_bytes(bytes(row["value"])) async for row in rows]

    async def stored_objects(self, student_no: str) -> list[str]:
        objects = self.runtime.objects
        assert objects is not None
        names: list[str] = []
        for prefix in ("documents/", "photos/"):
            listing = objects.client.list_objects(
                objects.bucket, prefix=f"{prefix}{student_no}/", recursive=True
            )
            names.extend(o.object_name for o in listing if o.object_name)
        return names


@pytest.fixture
async def svc(infra: Endpoints) -> AsyncIterator[DocumentsService]:
    settings = isolated_settings(Settings, infra, max_document_bytes=MAX_DOCUMENT_BYTES)
    app = create_app(settings, signing_keys=SIGNER.jwks)
    async with serve_in_process(app, "http://documents") as http:
        yield DocumentsService(app, app.state.runtime, http)


async def test_an_upload_is_stored_under_a_server_key_and_announced(
    svc: DocumentsService, samples: Any
) -> None:
    number = new_student_no()
    await svc.admit(number)
    data = samples.image_pdf()
    answer = await svc.upload(number, data, "hk_permanent_id_card", "hkid scan.pdf")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["version"] == 1
    assert body["status"] == "pending"
    assert body["content_type"] == "application/pdf"
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["filename"] == "hkid scan.pdf"

    assert await svc.stored_objects(number) == [f"documents/{number}/{body['id']}"]
    [event] = await svc.published(number)
    assert event.event_type == "DocumentUploaded"
    assert event.subject == number
    assert event.payload | {"uploaded_at": None} == {
        "document_id": body["id"],
        "student_no": number,
        "doc_type": "hk_permanent_id_card",
        "version": 1,
        "content_type": "application/pdf",
        "size_bytes": len(data),
        "sha256": body["sha256"],
        "uploaded_at": None,
    }
    mine = await svc.http.get("/api/documents/me/documents", headers=auth(Role.STUDENT, number))
    assert [d["id"] for d in mine.json()] == [body["id"]]
    own = await svc.http.get(
        f"/api/documents/documents/{body['id']}/content", headers=auth(Role.STUDENT, number)
    )
    assert own.status_code == 200
    assert own.content == data
    assert own.headers["content-type"] == "application/pdf"
    assert own.headers["x-content-type-options"] == "nosniff"


async def test_five_uploads_leave_five_versions_and_only_the_latest_in_the_queue(
    svc: DocumentsService, samples: Any
) -> None:
    number = new_student_no()
    await svc.admit(number)
    ids = []
    for page_count in range(1, 6):
        answer = await svc.upload(number, samples.pdf(pages=page_count))
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])

    mine = (
        await svc.http.get("/api/documents/me/documents", headers=auth(Role.STUDENT, number))
    ).json()
    assert [(d["version"], d["status"]) for d in mine] == [
        (5, "pending"),
        (4, "superseded"),
        (3, "superseded"),
        (2, "superseded"),
        (1, "superseded"),
    ]
    events = await svc.published(number)
    assert [(e.event_type, e.payload["version"]) for e in events] == [
        ("DocumentUploaded", v) for v in range(1, 6)
    ]
    assert len(await svc.stored_objects(number)) == 5

    queue = await svc.http.get(
        "/api/documents/queue?kind=document&status=pending", headers=officer()
    )
    assert queue.status_code == 200, queue.text
    items = [i for i in queue.json()["items"] if i["student_no"] == number]
    assert [(i["id"], i["version"]) for i in items] == [(ids[-1], 5)]
    assert items[0]["age"]["working_days"] == 0
    assert items[0]["age"]["overdue"] is False

    stale = await svc.http.post(
        f"/api/documents/documents/{ids[0]}/verify",
        json={"expiry_date": "2030-01-01"},
        headers=officer(),
    )
    assert stale.status_code == 409
    assert "newer version" in stale.json()["detail"]


async def test_the_same_file_sent_again_while_waiting_for_review_is_one_version(
    svc: DocumentsService, samples: Any
) -> None:
    number = new_student_no()
    await svc.admit(number)
    first, other = samples.pdf(pages=1), samples.pdf(pages=2)
    sent = await svc.upload(number, first)
    assert sent.status_code == 201, sent.text
    again = await svc.upload(number, first)  # a retry whose first answer was lost
    assert again.status_code == 200, again.text
    assert again.json() == sent.json()

    changed = await svc.upload(number, other)
    assert changed.status_code == 201
    # The first file is no longer the one waiting for review: sending it is a new version.
    back = await svc.upload(number, first)
    assert back.status_code == 201
    assert back.json()["version"] == 3

    events = await svc.published(number)
    assert [e.payload["version"] for e in events] == [1, 2, 3]
    assert len(await svc.stored_objects(number)) == 3


async def test_the_queue_is_oldest_first_and_flags_items_beyond_five_working_days(
    svc: DocumentsService, samples: Any
) -> None:
    first, second = new_student_no(), new_student_no()
    for number in (first, second):
        await svc.admit(number)
        assert (await svc.upload(number, samples.pdf())).status_code == 201
    # The second student's upload has waited a fortnight.
    await svc.runtime.db[DOCUMENTS].update_one(
        {"student_no": second},
        {"$set": {"uploaded_at": datetime.now(UTC) - timedelta(days=14)}},
    )
    queue = (await svc.http.get("/api/documents/queue?kind=document", headers=officer())).json()
    assert [i["student_no"] for i in queue["items"]] == [second, first]
    assert queue["items"][0]["age"]["overdue"] is True
    # Ten weekdays, less at most three general holidays (Christmas to New Year, Lunar New Year).
    assert queue["items"][0]["age"]["working_days"] >= 7
    assert queue["items"][1]["age"]["overdue"] is False
    assert queue["overdue"] == 1

    student = await svc.http.get("/api/documents/queue", headers=auth(Role.STUDENT, first))
    assert student.status_code == 403
    card = await svc.http.get("/api/documents/queue?kind=document", headers=card_office())
    assert card.status_code == 403
    assert (await svc.http.get("/api/documents/queue")).status_code == 401


async def test_verification_records_the_expiry_and_refuses_one_before_the_cutoff(
    svc: DocumentsService, samples: Any
) -> None:
    number = new_student_no()
    await svc.admit(number, intake_year=2027)
    doc = (await svc.upload(number, samples.pdf(), "hk_id_card")).json()
    url = f"/api/documents/documents/{doc['id']}"

    early = await svc.http.post(
        f"{url}/verify", json={"expiry_date": "2027-09-01"}, headers=officer()
    )
    assert early.status_code == 422
    assert "2027-09-01" in early.json()["detail"]
    student = await svc.http.post(f"{url}/verify", json={}, headers=auth(Role.STUDENT, number))
    assert student.status_code == 403

    ok = await svc.http.post(f"{url}/verify", json={"expiry_date": "2031-06-30"}, headers=officer())
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "verified"
    again = await svc.http.post(f"{url}/verify", json={}, headers=officer())
    assert again.status_code == 409

    verified = [e for e in await svc.published(number) if e.event_type == "DocumentVerified"]
    assert len(verified) == 1
    assert verified[0].payload["expiry_date"] == "2031-06-30"
    assert verified[0].payload["version"] == 1
    assert verified[0].payload["verified_by"] == "registry_officer.tester"


async def test_a_rejection_carries_the_reason_and_version(
    svc: DocumentsService, samples: Any
) -> None:
    number = new_student_no()
    await svc.admit(number)
    await svc.upload(number, samples.pdf())
    doc = (await svc.upload(number, samples.pdf(pages=2))).json()
    url = f"/api/documents/documents/{doc['id']}/reject"
    blank = await svc.http.post(url, json={"reason": "  "}, headers=officer())
    assert blank.status_code == 422
    answer = await svc.http.post(
        url, json={"reason": "The photo page is cut off."}, headers=officer()
    )
    assert answer.status_code == 200, answer.text
    [rejected] = [e for e in await svc.published(number) if e.event_type == "DocumentRejected"]
    assert rejected.payload["version"] == 2
    assert rejected.payload["document_id"] == doc["id"]
    assert rejected.payload["reason"] == "The photo page is cut off."
    # Both attempts are on the staff audit trail, the refused one too.
    trail = await svc.runtime.db[STAFF_AUDIT].find({"path": url}).sort("at", 1).to_list()
    assert [(t["actor"], t["role"], t["status"]) for t in trail] == [
        ("registry_officer.tester", "registry_officer", 422),
        ("registry_officer.tester", "registry_officer", 200),
    ]
    assert trail[1]["route"] == "/documents/{document_id}/reject"


async def test_attacks_are_refused_with_a_reason_and_nothing_is_stored(
    svc: DocumentsService, samples: Any
) -> None:
    number = new_student_no()
    await svc.admit(number)
    cases: list[tuple[bytes, str, int, str]] = [
        (b"", "empty.pdf", 400, "empty_file"),
        (samples.pdf() + samples.zip_archive(), "both.pdf", 422, "polyglot"),
        (samples.png_header_only(80_000, 80_000), "bomb.png", 422, "too_many_pixels"),
        (samples.jpeg(samples.scan())[:-500], "cut.jpg", 422, "truncated"),
        (b"<html><script>alert(1)</script></html>", "page.pdf", 415, "unsupported_type"),
        (samples.pdf(), "../../etc/passwd", 400, "bad_filename"),
        (samples.pdf(), "..\\..\\boot.ini", 400, "bad_filename"),
    ]
    for data, name, status, code in cases:
        answer = await svc.upload(number, data, filename=name)
        assert answer.status_code == status, (name, answer.text)
        assert answer.json()["detail"]["code"] == code, name
        assert answer.json()["detail"]["message"]

    huge = b"%PDF-1.7\n" + b"0" * (5 * MAX_DOCUMENT_BYTES)
    too_big = await svc.upload(number, huge)
    assert too_big.status_code == 413
    assert too_big.json()["detail"]["code"] == "too_large"
    bad_type = await svc.upload(number, samples.pdf(), doc_type="library_card")
    assert bad_type.status_code == 422
    no_file = await svc.http.post(
        "/api/documents/me/documents",
        data={"doc_type": "passport"},
        headers=auth(Role.STUDENT, number),
    )
    assert no_file.status_code in (400, 415)

    assert await svc.stored_objects(number) == []
    assert await svc.published(number) == []
    assert await svc.runtime.db[DOCUMENTS].count_documents({"student_no": number}) == 0


async def test_before_admission_reaches_the_service_uploads_are_answered_unread(
    svc: DocumentsService, samples: Any
) -> None:
    """A student whose admission has not arrived yet is answered 409 with a
    Retry-After before a byte of the file is read; nothing is stored. Once the
    admission is in, the same upload is taken."""
    number = new_student_no()
    answer = await svc.upload(number, samples.pdf())
    assert answer.status_code == 409
    assert answer.headers["retry-after"] == "3"
    assert "admission" in answer.json()["detail"]
    photo = await svc.submit_photo(number, samples.face_photo())
    assert photo.status_code == 409
    assert photo.headers["retry-after"] == "3"

    chunks_read = 0
    boundary = "early"

    async def body() -> AsyncIterator[bytes]:
        nonlocal chunks_read
        chunks_read += 1
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="me.jpg"'
            "\r\nContent-Type: image/jpeg\r\n\r\n"
        ).encode()
        for _ in range(100):  # far over the cap if it were read: 413, not 409
            chunks_read += 1
            yield b"\xff" * 65_536

    early = await svc.http.post(
        "/api/documents/me/photo",
        content=body(),
        headers={
            **auth(Role.STUDENT, number),
            "content-type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert early.status_code == 409, early.text
    assert chunks_read == 0
    assert await svc.stored_objects(number) == []
    assert await svc.published(number) == []

    await svc.admit(number)
    taken = await svc.upload(number, samples.pdf())
    assert taken.status_code == 201, taken.text


async def test_students_see_only_their_own_files_and_staff_links_expire(
    svc: DocumentsService, samples: Any
) -> None:
    owner, other = new_student_no(), new_student_no()
    await svc.admit(owner)
    data = samples.jpeg(samples.scan())
    doc = (await svc.upload(owner, data, "student_visa", "visa.jpg")).json()
    url = f"/api/documents/documents/{doc['id']}/content"

    assert (await svc.http.get(url, headers=auth(Role.STUDENT, other))).status_code == 404
    assert (await svc.http.get(url)).status_code == 401
    assert (await svc.http.get(url, headers=card_office())).status_code == 403
    staff = await svc.http.get(url, headers=officer())
    assert (staff.status_code, staff.content) == (200, data)

    link = await svc.http.post(
        f"/api/documents/documents/{doc['id']}/content-link", headers=officer()
    )
    assert link.status_code == 200, link.text
    opened = await svc.http.get(link.json()["url"])
    assert (opened.status_code, opened.content) == (200, data)
    expires_at = datetime.fromisoformat(link.json()["expires_at"])
    assert timedelta(0) < expires_at - datetime.now(UTC) <= timedelta(seconds=301)
    student_link = await svc.http.post(
        f"/api/documents/documents/{doc['id']}/content-link", headers=auth(Role.STUDENT, owner)
    )
    assert student_link.status_code == 403

    # A link opens only its own file, and nothing once it has expired.
    token = link.json()["url"].split("link=")[1]
    second = (await svc.upload(owner, samples.pdf(), "passport")).json()
    wrong = await svc.http.get(f"/api/documents/documents/{second['id']}/content?link={token}")
    assert wrong.status_code == 403
    await svc.runtime.db[CONTENT_LINKS].update_many(
        {}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}}
    )
    expired = await svc.http.get(link.json()["url"])
    assert expired.status_code == 403


async def test_a_good_photo_waits_for_the_card_office_who_approve_it_with_the_card_image(
    svc: DocumentsService, samples: Any
) -> None:
    number = new_student_no()
    await svc.admit(number)
    data = samples.face_photo()
    answer = await svc.submit_photo(number, data)
    assert answer.status_code == 201, answer.text
    photo = answer.json()
    assert (photo["width"], photo["height"], photo["status"]) == (480, 600, "pending")

    queue = (await svc.http.get("/api/documents/queue?kind=photo", headers=card_office())).json()
    assert [i["id"] for i in queue["items"]] == [photo["id"]]
    assert (
        await svc.http.get("/api/documents/queue?kind=photo", headers=officer())
    ).status_code == 403

    approved = await svc.http.post(
        f"/api/documents/photos/{photo['id']}/approve", headers=card_office()
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    again = await svc.http.post(
        f"/api/documents/photos/{photo['id']}/approve", headers=card_office()
    )
    assert again.status_code == 409

    events = await svc.published(number)
    assert [e.event_type for e in events] == ["PhotoSubmitted", "PhotoApproved"]
    submitted, approval = events
    assert submitted.payload["sha256"] == hashlib.sha256(data).hexdigest()
    event = PhotoApproved.model_validate(approval.payload)  # checks digest and JPEG magic
    image = event.card_image()
    assert len(image) < 100_000
    assert hashlib.sha256(image).hexdigest() == event.card_image_sha256
    assert base64.b64decode(approval.payload["card_image_jpeg_base64"]) == image


async def test_the_card_image_made_at_the_check_goes_with_the_approval_and_no_further(
    svc: DocumentsService, samples: Any
) -> None:
    """A photo's card image is made as it is checked and kept on its row until the
    card office decides; the approval sends that one without reading the file (it
    is gone from the bucket here). A row without one, or with one of other card
    dimensions, has it made from the file as before."""
    spec = PhotoSpec()
    data = samples.face_photo()
    expected = card_image(data, spec)

    async def submitted(student_no: str, photo: bytes = data) -> str:
        answer = await svc.submit_photo(student_no, photo)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    async def row(photo_id: str) -> dict[str, Any]:
        found = await svc.runtime.db[PHOTOS].find_one({"_id": photo_id})
        assert found is not None
        return found

    async def approved_image(student_no: str, photo_id: str) -> bytes:
        answer = await svc.http.post(
            f"/api/documents/photos/{photo_id}/approve", headers=card_office()
        )
        assert answer.status_code == 200, answer.text
        assert CARD_IMAGE not in answer.json()
        [approval] = [e for e in await svc.published(student_no) if e.event_type == "PhotoApproved"]
        return PhotoApproved.model_validate(approval.payload).card_image()

    objects = svc.runtime.objects
    assert objects is not None

    made = new_student_no()
    await svc.admit(made)
    photo_id = await submitted(made)
    assert (await row(photo_id))[CARD_IMAGE] == expected
    queue = await svc.http.get(
        f"/api/documents/queue?kind=photo&student_no={made}", headers=card_office()
    )
    assert [i["id"] for i in queue.json()["items"]] == [photo_id]
    await objects.remove((await row(photo_id))["object_key"])
    assert await approved_image(made, photo_id) == expected
    assert CARD_IMAGE not in await row(photo_id)

    for stored in (None, card_image(data, PhotoSpec(card_width=200, card_height=250))):
        older = new_student_no()
        await svc.admit(older)
        photo_id = await submitted(older)
        change = {"$unset": {CARD_IMAGE: ""}} if stored is None else {"$set": {CARD_IMAGE: stored}}
        await svc.runtime.db[PHOTOS].update_one({"_id": photo_id}, change)
        assert await approved_image(older, photo_id) == expected

    # Rejected or superseded, a photo keeps no card image.
    decided = new_student_no()
    await svc.admit(decided)
    first = await submitted(decided)
    second = await submitted(decided, samples.jpeg(samples.portrait().resize((560, 700))))
    assert (await row(first))["status"] == "superseded"
    assert CARD_IMAGE not in await row(first)
    assert CARD_IMAGE in await row(second)
    rejected = await svc.http.post(
        f"/api/documents/photos/{second}/reject",
        json={"reason": "The photo is not recent."},
        headers=card_office(),
    )
    assert rejected.status_code == 200, rejected.text
    assert CARD_IMAGE not in await row(second)


async def test_a_failing_photo_is_refused_with_every_reason_and_not_stored(
    svc: DocumentsService, samples: Any
) -> None:
    number = new_student_no()
    await svc.admit(number)
    # Square, not 4:5, and the face about a tenth of the photo's width.
    canvas = Image.new("RGB", (480, 480), (170, 170, 170))
    canvas.paste(samples.portrait().resize((200, 250)), (140, 80))
    answer = await svc.submit_photo(number, samples.jpeg(canvas))
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert {r["code"] for r in detail["reasons"]} == {"not_portrait_4_5", "face_too_small"}
    assert detail["specification"]["min_resolution"] == {"width": 360, "height": 450}
    assert await svc.stored_objects(number) == []
    [rejected] = await svc.published(number)
    assert rejected.event_type == "PhotoRejected"
    assert rejected.payload["rejected_by"] == "system"
    assert len(rejected.payload["reasons"]) == 2

    # With a photo awaiting review, a failed retry changes nothing downstream.
    assert (await svc.submit_photo(number, samples.face_photo())).status_code == 201
    assert (await svc.submit_photo(number, samples.cat_photo())).status_code == 422
    assert [e.event_type for e in await svc.published(number)] == [
        "PhotoRejected",
        "PhotoSubmitted",
    ]
    attack = await svc.submit_photo(number, samples.pdf())
    assert attack.status_code == 415


async def test_photos_beyond_the_upload_budget_wait_and_are_turned_away_unstored(
    infra: Endpoints, samples: Any
) -> None:
    """With room for one upload, a photo arriving while another is still being sent
    waits, and is answered 503 (busy) when no room comes: nothing of it is stored,
    and the same photo sent again once room is free is taken."""
    settings = isolated_settings(
        Settings, infra, upload_budget_bytes=200_000, upload_wait_seconds=0.5
    )
    app = create_app(settings, signing_keys=SIGNER.jwks)
    async with serve_in_process(app, "http://documents") as http:
        svc = DocumentsService(app, app.state.runtime, http)
        slow, quick = new_student_no(), new_student_no()
        await svc.admit(slow)
        await svc.admit(quick)
        photo = samples.face_photo()
        boundary = "budget-test"
        head = (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="me.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        )
        body = head.encode() + photo + f"\r\n--{boundary}--\r\n".encode()
        half_sent, go_on = asyncio.Event(), asyncio.Event()

        async def trickle() -> AsyncIterator[bytes]:
            yield body[: len(body) // 2]
            half_sent.set()
            await go_on.wait()
            yield body[len(body) // 2 :]

        # No Content-Length (sent in chunks): it reserves the largest photo allowed,
        # i.e. the whole budget, until it is answered.
        first = asyncio.create_task(
            http.post(
                "/api/documents/me/photo",
                content=trickle(),
                headers={
                    **auth(Role.STUDENT, slow),
                    "content-type": f"multipart/form-data; boundary={boundary}",
                },
            )
        )
        await half_sent.wait()
        busy = await svc.submit_photo(quick, photo)
        assert busy.status_code == 503, busy.text
        assert busy.headers["retry-after"] == "5"
        assert busy.json()["detail"]["code"] == "busy"
        assert await svc.stored_objects(quick) == []
        assert await svc.published(quick) == []

        go_on.set()
        assert (await first).status_code == 201
        again = await svc.submit_photo(quick, photo)
        assert again.status_code == 201, again.text
        assert [e.event_type for e in await svc.published(quick)] == ["PhotoSubmitted"]


async def test_the_card_office_rejects_a_photo_and_a_new_one_supersedes_the_pending_one(
    svc: DocumentsService, samples: Any
) -> None:
    number = new_student_no()
    await svc.admit(number)
    first = (await svc.submit_photo(number, samples.face_photo())).json()
    rejected = await svc.http.post(
        f"/api/documents/photos/{first['id']}/reject",
        json={"reason": "Please remove your glasses."},
        headers=card_office(),
    )
    assert rejected.status_code == 200, rejected.text
    second = (await svc.submit_photo(number, samples.png(samples.portrait()))).json()
    third = (await svc.submit_photo(number, samples.face_photo())).json()
    assert (second["version"], third["version"]) == (2, 3)
    states = {
        row["version"]: row["status"]
        async for row in svc.runtime.db[PHOTOS].find({"student_no": number})
    }
    assert states == {1: "rejected", 2: "superseded", 3: "pending"}
    events = await svc.published(number)
    assert [e.event_type for e in events] == [
        "PhotoSubmitted",
        "PhotoRejected",
        "PhotoSubmitted",
        "PhotoSubmitted",
    ]
    assert events[1].payload["reasons"] == ["Please remove your glasses."]
    assert events[1].payload["rejected_by"] == "card_office.tester"
    own = await svc.http.get(
        f"/api/documents/photos/{third['id']}/content", headers=auth(Role.STUDENT, number)
    )
    assert own.status_code == 200
    assert own.headers["content-type"] == "image/jpeg"


async def test_a_form_submitted_before_admission_arrives_still_lets_the_student_upload(
    svc: DocumentsService, samples: Any
) -> None:
    number = new_student_no()
    example = example_payload(FormSubmitted)
    assert isinstance(example, FormSubmitted)
    form = example.model_copy(update={"student_no": number, "intake_year": 2026})
    envelope = Envelope.wrap(form, subject=number, correlation_id="form")
    record = Record(
        topic=envelope.topic,
        partition=0,
        offset=1,
        key=number.encode(),
        value=envelope.to_bytes(),
        headers={k: v.encode() for k, v in envelope.headers().items()},
    )
    assert await svc.runtime.consumer.handle(record, dead_letter_on_failure=False) is (
        Outcome.HANDLED
    )
    assert await svc.runtime.consumer.handle(record, dead_letter_on_failure=False) is (
        Outcome.DUPLICATE
    )
    await svc.admit(number, intake_year=2027)  # identity's intake year wins
    owner = await svc.runtime.db[OWNERS].find_one({"_id": number})
    assert owner is not None
    assert owner["intake_year"] == 2027
    assert owner["required_documents"] == [d.value for d in form.required_documents]
    assert "hkid_number" not in owner
    assert (await svc.upload(number, samples.pdf())).status_code == 201


async def test_the_queue_filters_by_student_and_type_and_shows_the_photo_checks(
    svc: DocumentsService, samples: Any
) -> None:
    first, second = new_student_no(), new_student_no()
    for number in (first, second):
        await svc.admit(number)
        assert (await svc.upload(number, samples.pdf(), "passport")).status_code == 201
    hkid = await svc.upload(first, samples.image_pdf(), "hk_permanent_id_card", "hkid.pdf")
    assert hkid.status_code == 201, hkid.text

    mine = await svc.http.get(
        f"/api/documents/queue?kind=document&student_no={first}", headers=officer()
    )
    assert mine.status_code == 200, mine.text
    assert sorted(i["doc_type"] for i in mine.json()["items"]) == [
        "hk_permanent_id_card",
        "passport",
    ]
    assert {i["student_no"] for i in mine.json()["items"]} == {first}
    typed = await svc.http.get(
        f"/api/documents/queue?kind=document&student_no={first}&doc_type=hk_permanent_id_card",
        headers=officer(),
    )
    [item] = typed.json()["items"]
    assert (item["id"], item["filename"]) == (hkid.json()["id"], "hkid.pdf")
    bad = await svc.http.get("/api/documents/queue?student_no=12&doc_type=x", headers=officer())
    assert bad.status_code == 422

    photo = await svc.submit_photo(second, samples.face_photo())
    assert photo.status_code == 201, photo.text
    photos = await svc.http.get(
        f"/api/documents/queue?kind=photo&student_no={second}", headers=card_office()
    )
    [queued] = photos.json()["items"]
    checks = queued["checks"]
    assert (checks["faces"], checks["width"], checks["height"]) == (1, 480, 600)
    assert 60 <= checks["brightness"] <= 220
    assert checks["sharpness"] >= 40


async def test_files_no_record_names_are_swept_once_old_enough(
    svc: DocumentsService, samples: Any
) -> None:
    number = new_student_no()
    await svc.admit(number)
    kept_doc = (await svc.upload(number, samples.pdf())).json()
    kept_photo = (await svc.submit_photo(number, samples.face_photo())).json()
    objects = svc.runtime.objects
    assert objects is not None
    # What a failed upload leaves behind, and keys of other shapes (never touched).
    orphans = [f"documents/{number}/{uuid.uuid4()}", f"photos/{number}/{uuid.uuid4()}"]
    strangers = ["documents/readme.txt", f"documents/{number}/notes/x", "exports/roster.csv"]
    for key in orphans + strangers:
        await objects.put(key, b"left behind", "application/octet-stream")
    # A record naming another key does not protect a file under its id.
    misnamed = f"documents/{uuid.uuid4().int % 10**8:08d}/{kept_doc['id']}"
    await objects.put(misnamed, b"not the record's file", "application/octet-stream")

    def sweeper(hours_later: float) -> OrphanSweeper:
        at = datetime.now(UTC) + timedelta(hours=hours_later)
        return OrphanSweeper(
            svc.runtime.db, objects, every_seconds=60, grace=timedelta(hours=1), clock=lambda: at
        )

    too_soon = await sweeper(0.5).sweep()
    assert too_soon.removed == []
    everything = {key for key, _ in await objects.listed("")}
    assert set(orphans + strangers) | {misnamed} <= everything

    swept = await sweeper(2).sweep()
    assert sorted(swept.removed) == sorted([*orphans, misnamed])
    left = {key for key, _ in await objects.listed("")}
    assert left == {
        f"documents/{number}/{kept_doc['id']}",
        f"photos/{number}/{kept_photo['id']}",
        *strangers,
    }
    # The student's files are still served.
    own = await svc.http.get(
        f"/api/documents/documents/{kept_doc['id']}/content", headers=auth(Role.STUDENT, number)
    )
    assert own.status_code == 200
    assert (await sweeper(3).sweep()).removed == []
