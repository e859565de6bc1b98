"""The card service in-process on real MongoDB and S3: events in through its consumer,
commands through its HTTP API, events out in its outbox."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from card.domain.card import CardHolder, Particulars, Photo, RegistrationState
from card.domain.card_number import is_valid_card_number
from card.main import create_app
from card.settings import Settings
from card.store import CARD_HOLDERS, CARD_NUMBERS
from card.store.holders import to_document
from card.store.numbers import CardNumbers, reserve_block
from fastapi import FastAPI
from opr_shared.auth import (
    Role,
)
from opr_shared.events.catalogue import (
    AccountActivated,
    AdmissionRoute,
    PhotoApproved,
    RegistrationCompleted,
    RegistrationStatus,
    RegistrationStatusChanged,
    RegistrationWithdrawn,
    StudentAdmitted,
)
from opr_shared.events.envelope import Envelope, EventPayload
from opr_shared.localinfra import Endpoints
from opr_shared.messaging.consumer import Outcome, Record
from opr_shared.runtime import ServiceRuntime
from opr_shared.store.mongo import OUTBOX, Transaction
from opr_shared.testing.service import TestSigner, isolated_settings, serve_in_process
from PIL import Image
from prometheus_client import REGISTRY

pytestmark = pytest.mark.integration

SIGNER = TestSigner()


def token(role: Role, student_no: str | None = None) -> dict[str, str]:
    return SIGNER.headers(role, student_no)


STAFF = token(Role.CARD_OFFICE)


@dataclass
class CardService:
    app: FastAPI
    runtime: ServiceRuntime
    http: httpx.AsyncClient

    async def deliver(self, payload: EventPayload) -> Outcome:
        envelope = Envelope.wrap(payload, subject=payload.student_no, correlation_id="test")  # type: ignore[attr-defined]
        return await self.redeliver(envelope)

    async def redeliver(self, envelope: Envelope) -> Outcome:
        record = Record(
            topic=envelope.topic,
            partition=0,
            offset=0,
            key=envelope.subject.encode(),
            value=envelope.to_bytes(),
            headers={k: v.encode() for k, v in envelope.headers().items()},
        )
        return await self.runtime.consumer.handle(record, dead_letter_on_failure=False)

    async def published(self, student_no: str) -> list[Envelope]:
        rows = self.runtime.db[OUTBOX].find({"key": student_no}).sort("seq", 1)
        return [Envelope.from_bytes(bytes(row["value"])) async for row in rows]

    async def published_once(self, student_no: str, count: int) -> list[Envelope]:
        """The student's events once there are ``count`` (a slot is offered just
        after the issue, by the slot-offer sweep), failing after 10 s."""
        deadline = time.monotonic() + 10
        while len(found := await self.published(student_no)) < count:
            assert time.monotonic() < deadline, [e.event_type for e in found]
            await asyncio.sleep(0.05)
        return found


@pytest.fixture
async def card(infra: Endpoints) -> AsyncIterator[CardService]:
    # The slot-offer sweep runs as in the service, woken by the issues only (no
    # periodic pass: a test that writes waiting cards itself decides who books).
    settings = isolated_settings(Settings, infra, card_slot_offer_seconds=3600)
    app = create_app(settings, signing_keys=SIGNER.jwks)
    runtime: ServiceRuntime = app.state.runtime
    async with serve_in_process(app, "http://card") as http:
        workers = [asyncio.create_task(w.run()) for w in runtime.workers]
        try:
            yield CardService(app, runtime, http)
        finally:
            for worker in runtime.workers:
                await worker.stop()
            await asyncio.gather(*workers)


def new_student_no() -> str:
    return f"2{uuid.uuid4().int % 10**7:07d}"


def admitted(student_no: str) -> StudentAdmitted:
    return StudentAdmitted(
        student_no=student_no,
        surname="CHAN",
        given_names="Tai Man",
        chinese_name="陳大文",
        date_of_birth=date(2008, 3, 1),
        personal_email="tm.chan@example.com",
        mobile="+85291234567",
        programme_code="JS5101",
        programme_name="Bachelor of Engineering",
        intake_year=2026,
        admission_route=AdmissionRoute.JUPAS,
    )


def completed(student_no: str) -> RegistrationCompleted:
    return RegistrationCompleted(
        student_no=student_no,
        intake_year=2026,
        personal_email="tm.chan@example.com",
        outstanding=[],
        completed_at=datetime.now(UTC),
    )


def jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 400), colour).save(out, format="JPEG")
    return out.getvalue()


def approved(student_no: str, colour: tuple[int, int, int] = (200, 30, 30)) -> PhotoApproved:
    image = jpeg(colour)
    return PhotoApproved(
        photo_id=uuid.uuid4(),
        student_no=student_no,
        approved_by="card.ho",
        approved_at=datetime.now(UTC),
        card_image_jpeg_base64=base64.b64encode(image).decode(),
        card_image_sha256=hashlib.sha256(image).hexdigest(),
    )


def withdrawn(student_no: str) -> RegistrationWithdrawn:
    return RegistrationWithdrawn.model_validate(
        {
            "student_no": student_no,
            "intake_year": 2026,
            "personal_email": "tm.chan@example.com",
            "missing": [
                {
                    "item": "registration_form",
                    "label": "Registration form",
                    "compulsory": True,
                    "state": "missing",
                }
            ],
            "withdrawn_at": datetime.now(UTC).isoformat(),
        }
    )


def schedule(*windows: tuple[str, str, int], day: date | None = None) -> dict[str, Any]:
    when = day or (datetime.now(UTC) + timedelta(days=10)).date()
    return {
        "venue": "Student Card Office, Room 1101",
        "bring": ["Hong Kong Identity Card or passport"],
        "days": [
            {
                "date": when.isoformat(),
                "windows": [{"start": s, "end": e, "capacity": c} for s, e, c in windows],
            }
        ],
    }


@pytest.mark.parametrize(
    "order",
    [("admitted", "completed", "photo"), ("photo", "completed", "admitted")],
    ids="-".join,
)
async def test_one_card_whatever_the_order_and_however_often_facts_arrive(
    card: CardService, order: tuple[str, ...]
) -> None:
    number = new_student_no()
    events = {
        "admitted": admitted(number),
        "completed": completed(number),
        "photo": approved(number),
    }
    envelopes = {
        name: Envelope.wrap(event, subject=number, correlation_id="c")
        for name, event in events.items()
    }
    for i, name in enumerate(order):
        assert await card.redeliver(envelopes[name]) is Outcome.HANDLED
        assert await card.redeliver(envelopes[name]) is Outcome.DUPLICATE
        types = [e.event_type for e in await card.published(number)]
        assert types.count("CardIssued") == (1 if i == 2 else 0)
    # The same fact in a new event (a republished approval) changes nothing.
    assert await card.deliver(completed(number)) is Outcome.HANDLED
    [issued] = [e for e in await card.published(number) if e.event_type == "CardIssued"]
    assert is_valid_card_number(issued.payload["card_no"])
    assert issued.payload["replaces_card_no"] is None
    assert issued.payload["expires_on"] == "2030-08-31"

    holder = await card.http.get(f"/api/card/holders/{number}", headers=STAFF)
    assert holder.status_code == 200, holder.text
    body = holder.json()
    assert (body["status"], body["card_no"]) == ("issued", issued.payload["card_no"])
    stored = await card.runtime.db[CARD_HOLDERS].find_one({"_id": number})
    assert stored is not None
    photo_key = stored["photo"]["key"]
    assert card.runtime.objects is not None
    assert await card.runtime.objects.get(photo_key) == events["photo"].card_image()  # type: ignore[attr-defined]


async def test_a_fact_already_on_record_leaves_the_holder_unwritten(card: CardService) -> None:
    number = new_student_no()
    for event in (admitted(number), completed(number)):
        assert await card.deliver(event) is Outcome.HANDLED
    holders = card.runtime.db[CARD_HOLDERS]
    before = await holders.find_one({"_id": number})
    assert before is not None
    assert before["registration"] == "completed"

    # Registration announces a completion twice: the generic status event and
    # the specific one. The second finds the fact on record.
    again = RegistrationStatusChanged(
        student_no=number,
        intake_year=2026,
        from_status=RegistrationStatus.IN_PROGRESS,
        to_status=RegistrationStatus.COMPLETED,
        reason="all_verified",
        outstanding=[],
        changed_at=datetime.now(UTC),
    )
    assert await card.deliver(again) is Outcome.HANDLED
    assert await holders.find_one({"_id": number}) == before

    # A new fact is written.
    activated = AccountActivated(
        student_no=number,
        university_email=f"u{number}@connect.example.edu.hk",
        personal_email="tm.chan@example.com",
        activated_at=datetime.now(UTC),
    )
    assert await card.deliver(activated) is Outcome.HANDLED
    after = await holders.find_one({"_id": number})
    assert after is not None
    assert after["university_email"] == activated.university_email
    assert after["updated_at"] > before["updated_at"]
    assert {k: v for k, v in after.items() if k not in ("university_email", "updated_at")} == {
        k: v for k, v in before.items() if k not in ("university_email", "updated_at")
    }


async def test_schedule_offer_booking_print_collect_and_reissue(card: CardService) -> None:
    put = await card.http.put(
        "/api/card/schedule",
        json=schedule(("10:00", "11:00", 1), ("11:00", "12:00", 5)),
        headers=STAFF,
    )
    assert put.status_code == 200, put.text
    first_slot, second_slot = (s["slot_id"] for s in put.json()["slots"])

    number = new_student_no()
    student = token(Role.STUDENT, number)
    for event in (admitted(number), completed(number), approved(number)):
        await card.deliver(event)
    published = await card.published_once(number, 2)
    assert [e.event_type for e in published] == ["CardIssued", "CardReadyForCollection"]
    ready = published[1].payload
    card_no = published[0].payload["card_no"]
    assert (ready["slot_id"], ready["card_no"]) == (first_slot, card_no)
    assert ready["bring"] == ["Hong Kong Identity Card or passport"]
    assert ready["venue"] == "Student Card Office, Room 1101"

    me = (await card.http.get("/api/card/me", headers=student)).json()
    assert (me["status"], me["card"]["card_no"], me["slot"]["slot_id"]) == (
        "issued",
        card_no,
        first_slot,
    )
    slots = (await card.http.get("/api/card/me/slots", headers=student)).json()
    assert [s["slot_id"] for s in slots["slots"]] == [second_slot]  # the first is full now

    moved = await card.http.post(
        "/api/card/me/booking", json={"slot_id": second_slot}, headers=student
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["slot"]["slot_id"] == second_slot
    staff_view = (await card.http.get("/api/card/schedule", headers=STAFF)).json()
    assert [s["booked"] for s in staff_view["slots"]] == [0, 1]

    # Shrinking a booked slot below its bookings is refused.
    shrink = await card.http.put(
        "/api/card/schedule", json=schedule(("10:00", "11:00", 1)), headers=STAFF
    )
    assert shrink.status_code == 409
    assert "cannot be removed" in shrink.json()["detail"]

    image = await card.http.get(f"/api/card/cards/{card_no}/image.png", headers=STAFF)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")

    # A new photo before collection: a new number, the booking kept for it.
    await card.deliver(approved(number, colour=(30, 30, 200)))
    reissued, announced = (await card.published(number))[-2:]
    assert reissued.event_type == "CardIssued"
    assert reissued.payload["replaces_card_no"] == card_no
    new_no = reissued.payload["card_no"]
    assert new_no != card_no
    assert (announced.payload["card_no"], announced.payload["slot_id"]) == (new_no, second_slot)

    old = await card.http.post(f"/api/card/cards/{card_no}/collected", headers=STAFF)
    assert old.status_code == 409
    assert f"replaced by {new_no}" in old.json()["detail"]
    typo = new_no[:-1] + str((int(new_no[-1]) + 1) % 10)
    bad = await card.http.post(f"/api/card/cards/{typo}/collected", headers=STAFF)
    assert bad.status_code == 422
    assert "check digit" in bad.json()["detail"]
    done = await card.http.post(f"/api/card/cards/{new_no}/collected", headers=STAFF)
    again = await card.http.post(f"/api/card/cards/{new_no}/collected", headers=STAFF)
    assert (done.status_code, again.status_code) == (200, 200)
    assert done.json()["collected_by"] == "card_office.tester"
    collected = [e for e in await card.published(number) if e.event_type == "CardCollected"]
    assert [e.payload["card_no"] for e in collected] == [new_no]
    me = (await card.http.get("/api/card/me", headers=student)).json()
    assert me["status"] == "collected"


async def test_withdrawal_cancels_the_card_and_frees_its_place(card: CardService) -> None:
    await card.http.put("/api/card/schedule", json=schedule(("10:00", "11:00", 1)), headers=STAFF)
    number = new_student_no()
    for event in (admitted(number), completed(number), approved(number)):
        await card.deliver(event)
    card_no = (await card.published_once(number, 2))[0].payload["card_no"]
    await card.deliver(withdrawn(number))
    await card.deliver(approved(number, colour=(0, 200, 0)))
    published = await card.published(number)
    assert [e.event_type for e in published] == [
        "CardIssued",
        "CardReadyForCollection",
        "CardCancelled",
    ]
    assert published[2].payload["card_no"] == card_no
    holder = (await card.http.get(f"/api/card/holders/{number}", headers=STAFF)).json()
    assert (holder["status"], holder["card_no"]) == ("withdrawn", None)
    assert holder["cards"][0]["state"] == "cancelled"
    slots = (await card.http.get("/api/card/schedule", headers=STAFF)).json()["slots"]
    assert slots[0]["booked"] == 0
    refused = await card.http.post(f"/api/card/cards/{card_no}/collected", headers=STAFF)
    assert refused.status_code == 409


async def test_many_students_racing_for_the_last_place_one_wins(card: CardService) -> None:
    put = await card.http.put(
        "/api/card/schedule", json=schedule(("15:00", "16:00", 1)), headers=STAFF
    )
    [slot_id] = [s["slot_id"] for s in put.json()["slots"]]
    now = datetime.now(UTC)
    students = [new_student_no() for _ in range(8)]
    # Issued cards without a slot, written directly: the race is about booking.
    for serial, number in enumerate(students, start=1):
        holder = CardHolder(
            student_no=number,
            particulars=Particulars("CHAN", "Tai Man", None, "BBA", "Business", 2026),
            registration=RegistrationState.COMPLETED,
            photo=Photo("p", "a" * 64, now, "photos/x.jpg"),
        )
        holder.issue(f"99{serial:08d}", now)
        await card.runtime.db[CARD_HOLDERS].insert_one(to_document(holder, now))

    async def book(number: str) -> httpx.Response:
        return await card.http.post(
            "/api/card/me/booking",
            json={"slot_id": slot_id},
            headers=token(Role.STUDENT, number),
        )

    answers = await asyncio.gather(*(book(n) for n in students))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [409] * 7, [a.text for a in answers]
    assert all("full" in a.json()["detail"] for a in answers if a.status_code == 409)
    slot = (await card.http.get("/api/card/schedule", headers=STAFF)).json()["slots"][0]
    assert (slot["booked"], slot["remaining"]) == (1, 0)
    announced = list(itertools.chain.from_iterable([await card.published(n) for n in students]))
    assert [e.event_type for e in announced] == ["CardReadyForCollection"]


async def test_staff_endpoints_need_a_card_office_role(card: CardService) -> None:
    number = new_student_no()
    await card.deliver(admitted(number))
    url = f"/api/card/holders/{number}"
    assert (await card.http.get(url)).status_code == 401
    assert (await card.http.get(url, headers=token(Role.STUDENT, number))).status_code == 403
    assert (await card.http.get(url, headers=token(Role.REGISTRY_OFFICER))).status_code == 403
    assert (await card.http.get(url, headers=token(Role.ADMIN))).status_code == 200
    assert (await card.http.get("/api/card/me", headers=STAFF)).status_code == 403
    no_card = await card.http.post(
        "/api/card/me/booking",
        json={"slot_id": "2026-08-20-1000"},
        headers=token(Role.STUDENT, number),
    )
    assert no_card.status_code == 409
    assert "no card has been issued" in no_card.json()["detail"]
    bad_schedule = await card.http.put(
        "/api/card/schedule", json=schedule(("11:00", "10:00", 3)), headers=STAFF
    )
    assert bad_schedule.status_code == 422
    assert "end after it starts" in bad_schedule.json()["detail"]


def runs_and_units() -> tuple[float, float]:
    runs = REGISTRY.get_sample_value("transaction_runs_total", {"service": "card"}) or 0.0
    units = sum(
        REGISTRY.get_sample_value("units_of_work_total", {"service": "card", "outcome": o}) or 0.0
        for o in ("committed", "already_processed", "failed")
    )
    return runs, units


async def test_a_burst_of_issues_fills_the_earliest_slots_without_running_again(
    card: CardService,
) -> None:
    put = await card.http.put(
        "/api/card/schedule",
        json=schedule(("09:00", "10:00", 3), ("10:00", "11:00", 3), ("11:00", "12:00", 10)),
        headers=STAFF,
    )
    assert put.status_code == 200, put.text
    students = [new_student_no() for _ in range(8)]
    for number in students:
        await card.deliver(admitted(number))
        await card.deliver(completed(number))
    runs_before, units_before = runs_and_units()
    # The last fact of eight students at once: eight cards issued side by side.
    outcomes = await asyncio.gather(*(card.deliver(approved(n)) for n in students))
    assert set(outcomes) == {Outcome.HANDLED}
    published = {n: await card.published_once(n, 2) for n in students}
    runs_after, units_after = runs_and_units()

    numbers = [events[0].payload["card_no"] for events in published.values()]
    assert len(set(numbers)) == len(students)
    assert all(is_valid_card_number(n) for n in numbers)
    booked = (await card.http.get("/api/card/schedule", headers=STAFF)).json()["slots"]
    assert [s["booked"] for s in booked] == [3, 3, 2]  # earliest first, none overbooked
    # Issues no longer share a document (the number counter, the earliest slot), so
    # they do not roll each other back; with the counter and the booking inside the
    # issuing transaction most of the eight ran again. (A rare conflict elsewhere on
    # the server is tolerated.)
    assert runs_after - runs_before <= units_after - units_before + 1


async def test_card_processes_draw_disjoint_blocks_of_serials(card: CardService) -> None:
    db = card.runtime.db
    year = 3000 + uuid.uuid4().int % 5000
    lasts = await asyncio.gather(*(reserve_block(db, year, 5) for _ in range(20)))
    assert sorted(lasts) == list(range(5, 101, 5))  # twenty blocks, none given twice

    first, second = CardNumbers(block=3), CardNumbers(block=3)

    async def allocate(numbers: CardNumbers, student_no: str) -> str:
        async def work(tx: Transaction) -> str:
            return await numbers.allocate(tx, year + 1, student_no, datetime.now(UTC))

        return await card.runtime.uow.run(work)

    students = [new_student_no() for _ in range(20)]
    drawn = await asyncio.gather(
        *(allocate(first if i % 2 else second, n) for i, n in enumerate(students))
    )
    assert len(set(drawn)) == len(students)
    assert all(is_valid_card_number(n) and n.startswith(str(year + 1)) for n in drawn)
    owners = {doc["_id"]: doc["student_no"] async for doc in db[CARD_NUMBERS].find({})}
    assert all(owners[n] == s for n, s in zip(drawn, students, strict=True))
