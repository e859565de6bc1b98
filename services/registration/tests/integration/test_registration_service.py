"""Registration's handlers and HTTP API against a real MongoDB, in one database per test.

Events are delivered through the same unit of work and processed-event guard the
consumer uses; the API runs in process with tokens signed by a test key.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from opr_shared.auth import Role
from opr_shared.events.catalogue import (
    AccountActivated,
    AdmissionRoute,
    CardIssued,
    DocumentType,
    DocumentUploaded,
    DocumentVerified,
    StudentAdmitted,
)
from opr_shared.events.envelope import Envelope, EventPayload
from opr_shared.localinfra import Endpoints
from opr_shared.messaging.consumer import Subscriptions
from opr_shared.store.mongo import OUTBOX, AlreadyProcessed, Transaction, UnitOfWork, ensure_indexes
from opr_shared.testing.dbcounts import queries_on
from opr_shared.testing.service import TestSigner, isolated_settings
from registration.domain.intake import Intake
from registration.main import create_app
from registration.messaging import subscriptions
from registration.settings import Settings
from registration.store import INTAKES, REGISTRATIONS

pytestmark = pytest.mark.integration

SIGNER = TestSigner()


def token(role: Role, student_no: str | None = None) -> dict[str, str]:
    return SIGNER.headers(role, student_no)


def student_no() -> str:
    return f"2{uuid.uuid4().int % 10**7:07d}"


def admitted(
    number: str, year: int, surname: str = "Wong", programme_code: str = "BBA"
) -> StudentAdmitted:
    return StudentAdmitted(
        student_no=number,
        jupas_app_no="87654321",
        surname=surname,
        given_names="Siu Ming",
        chinese_name="黃小明",
        date_of_birth=date(2005, 11, 5),
        personal_email=f"s{number}@example.com",
        mobile="+85261234567",
        programme_code=programme_code,
        programme_name="Business Administration",
        intake_year=year,
        admission_route=AdmissionRoute.JUPAS,
    )


class Service:
    """The registration service's app and unit of work on a private database."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.runtime = app.state.runtime
        self.uow: UnitOfWork = self.runtime.uow
        self.subs: Subscriptions = subscriptions()

    async def deliver(self, payload: EventPayload, event_id: uuid.UUID | None = None) -> bool:
        """Hand an event to its handler as the consumer does; False for a redelivery."""
        envelope = Envelope.wrap(payload, subject=payload.student_no, correlation_id="t")  # type: ignore[attr-defined]
        if event_id is not None:
            envelope = envelope.model_copy(update={"event_id": event_id})
        handler = self.subs.handler_for(payload.event_type, payload.schema_version)
        assert handler is not None

        async def work(tx: Transaction) -> None:
            await handler(tx, envelope, payload)

        try:
            await self.uow.run(work, handled_event_id=envelope.event_id)
        except AlreadyProcessed:
            return False
        return True

    async def outbox(self, subject: str) -> list[Envelope]:
        rows = self.runtime.db[OUTBOX].find({"key": subject}).sort("seq", 1)
        return [Envelope.from_bytes(bytes(r["value"])) async for r in rows]


@pytest.fixture
async def service(infra: Endpoints) -> AsyncIterator[Service]:
    app = create_app(isolated_settings(Settings, infra), signing_keys=SIGNER.jwks)
    svc = Service(app)
    await ensure_indexes(svc.runtime.db, svc.runtime.indexes)
    try:
        yield svc
    finally:
        await svc.runtime.mongo.close()


@pytest.fixture
async def client(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://reg") as c:
        yield c


def verified(number: str, doc_id: uuid.UUID) -> DocumentVerified:
    return DocumentVerified(
        document_id=doc_id,
        student_no=number,
        doc_type=DocumentType.HK_PERMANENT_ID_CARD,
        version=1,
        verified_by="officer.lam",
        verified_at=datetime.now(UTC),
    )


async def test_events_in_any_order_and_redelivered_complete_once(service: Service) -> None:
    number = student_no()
    doc_id = uuid.uuid4()
    # Verified before uploaded, both before the admission; then redelivered.
    verified_id = uuid.uuid4()
    assert await service.deliver(verified(number, doc_id), verified_id)
    assert not await service.deliver(verified(number, doc_id), verified_id)
    await service.deliver(
        DocumentUploaded(
            document_id=doc_id,
            student_no=number,
            doc_type=DocumentType.HK_PERMANENT_ID_CARD,
            version=1,
            content_type="image/jpeg",
            size_bytes=10,
            sha256="a" * 64,
            uploaded_at=datetime.now(UTC),
        )
    )
    await service.deliver(admitted(number, 2027))
    await service.deliver(
        AccountActivated(
            student_no=number,
            university_email="smwong@connect.example.edu.hk",
            personal_email=f"s{number}@example.com",
            activated_at=datetime.now(UTC),
        )
    )
    stored = await service.runtime.db[REGISTRATIONS].find_one({"_id": number})
    assert stored["status"] == "in_progress"
    assert "hk_permanent_id_card" not in stored["outstanding_items"]  # no residency yet
    assert stored["outstanding_items"][:2] == ["registration_form", "identity_documents"]

    events = await service.outbox(number)
    assert [e.event_type for e in events] == ["RegistrationStatusChanged"]
    assert events[0].payload["reason"] == "registration_opened"


def complete_form() -> dict[str, Any]:
    return {
        "gender": "male",
        "nationality": "CHN",
        "residency": "hk_permanent",
        "hkid_number": "A123456(3)",
        "correspondence_address": {"lines": ["1 Clear Water Bay Road"], "country_or_region": "HK"},
        "emergency_contact": {"name": "Wong Tai", "relationship": "Father", "phone": "61234567"},
        "declaration": True,
    }


async def test_the_card_office_progress_is_kept_without_reading_the_intake(
    service: Service,
) -> None:
    number, year = student_no(), 2031
    await service.runtime.db[INTAKES].insert_one(Intake(year).to_doc())
    assert await service.deliver(admitted(number, year))
    before = await queries_on(service.runtime.db, INTAKES)
    assert before > 0  # the admission read the calendar
    issued = CardIssued(
        card_no="2025000017",
        student_no=number,
        surname="Wong",
        given_names="Siu Ming",
        programme_code="BBA",
        programme_name="Business Administration",
        issued_at=datetime.now(UTC),
        expires_on=date(2036, 8, 31),
    )
    assert await service.deliver(issued)
    assert await queries_on(service.runtime.db, INTAKES) == before
    doc = await service.runtime.db[REGISTRATIONS].find_one({"_id": number})
    assert doc is not None
    assert set(doc["card"]["issued"]) == {"2025000017"}
    assert doc["status"] == "in_progress"


async def test_the_student_drafts_and_submits_once(
    service: Service, client: httpx.AsyncClient
) -> None:
    number = student_no()
    me = token(Role.STUDENT, number)
    assert (await client.get("/api/registration/me", headers=me)).status_code == 404
    await service.deliver(admitted(number, 2027))

    mine = await client.get("/api/registration/me", headers=me)
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["form"]["surname"] == "Wong"
    assert body["status"] == "in_progress"
    assert [i["item"] for i in body["checklist"]][:2] == ["university_account", "registration_form"]

    bad = await client.put(
        "/api/registration/me/form", headers=me, json={"hkid_number": "A1234564"}
    )
    assert bad.status_code == 422
    assert "check digit" in bad.text

    draft = await client.put(
        "/api/registration/me/form", headers=me, json={"residency": "hk_permanent"}
    )
    assert draft.status_code == 200
    assert "hk_permanent_id_card" in [i["item"] for i in draft.json()["checklist"]]

    refused = await client.post("/api/registration/me/submit", headers=me)
    assert refused.status_code == 422
    fields = {p["field"] for p in refused.json()["detail"]["problems"]}
    assert {"gender", "declaration", "hkid_number"} <= fields

    submitted = await client.post("/api/registration/me/submit", headers=me, json=complete_form())
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["submitted"] is True

    again = await client.post("/api/registration/me/submit", headers=me, json=complete_form())
    assert again.status_code == 409
    assert "only once" in again.json()["detail"]
    late_draft = await client.put(
        "/api/registration/me/form", headers=me, json={"gender": "female"}
    )
    assert late_draft.status_code == 409

    events = await service.outbox(number)
    assert [e.event_type for e in events] == ["RegistrationStatusChanged", "FormSubmitted"]
    assert events[1].payload["required_documents"] == ["hk_permanent_id_card"]


async def test_staff_search_detail_export_and_roles(
    service: Service, client: httpx.AsyncClient
) -> None:
    wong, chan = student_no(), student_no()
    await service.deliver(admitted(wong, 2027, surname="Wongsawat"))
    await service.deliver(admitted(chan, 2027, surname="Chan"))
    staff = token(Role.REGISTRY_OFFICER)

    assert (await client.get("/api/registration/registrations")).status_code == 401
    forbidden = await client.get(
        "/api/registration/registrations", headers=token(Role.STUDENT, wong)
    )
    assert forbidden.status_code == 403
    card_office = await client.get(
        f"/api/registration/registrations/{wong}", headers=token(Role.CARD_OFFICE)
    )
    assert card_office.status_code == 403

    found = await client.get(
        "/api/registration/registrations",
        params={"status": "in_progress", "q": "wong", "item": "registration_form"},
        headers=staff,
    )
    assert found.status_code == 200, found.text
    assert [r["student_no"] for r in found.json()["items"]] == [wong]
    none = await client.get(
        "/api/registration/registrations", params={"status": "completed"}, headers=staff
    )
    assert none.json()["total"] == 0
    bad = await client.get(
        "/api/registration/registrations", params={"status": "lost"}, headers=staff
    )
    assert bad.status_code == 422

    exported = await client.get(
        "/api/registration/registrations/export.csv", params={"q": "chan"}, headers=staff
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["student_no"], r["surname"], r["status"]) for r in rows] == [
        (chan, "Chan", "in_progress")
    ]

    one = await client.get(f"/api/registration/registrations/{wong}", headers=staff)
    assert one.status_code == 200
    history = one.json()["history"]
    assert history[0]["cause"] == "StudentAdmitted"
    assert history[0]["to_status"] == "in_progress"
    missing = await client.get("/api/registration/registrations/29999999", headers=staff)
    assert missing.status_code == 404


async def test_the_cohort_filters_by_programme_in_the_list_and_the_export(
    service: Service, client: httpx.AsyncClient
) -> None:
    bba, law = student_no(), student_no()
    await service.deliver(admitted(bba, 2027, surname="Lee"))
    await service.deliver(admitted(law, 2027, surname="Lee", programme_code="LLB"))
    staff = token(Role.REGISTRY_OFFICER)

    found = await client.get(
        "/api/registration/registrations", params={"programme": "llb", "q": "lee"}, headers=staff
    )
    assert found.status_code == 200, found.text
    assert [r["student_no"] for r in found.json()["items"]] == [law]
    exported = await client.get(
        "/api/registration/registrations/export.csv",
        params={"programme": "BBA", "q": "lee"},
        headers=staff,
    )
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["student_no"], r["programme_code"]) for r in rows] == [(bba, "BBA")]
    bad = await client.get(
        "/api/registration/registrations", params={"programme": "B A"}, headers=staff
    )
    assert bad.status_code == 422


async def test_intake_calendar_and_closing_twice(
    service: Service, client: httpx.AsyncClient
) -> None:
    year = 2040 + uuid.uuid4().int % 50
    staff = token(Role.ADMIN)
    future = {
        "registration_deadline": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        "term_start": f"{year}-09-01",
    }
    put = await client.put(f"/api/registration/intakes/{year}", json=future, headers=staff)
    assert put.status_code == 200, put.text
    assert put.json()["changed"] is True
    assert put.json()["age_cutoff"] == f"{year}-09-01"
    same = await client.put(f"/api/registration/intakes/{year}", json=future, headers=staff)
    assert same.json()["changed"] is False
    assert (
        await client.put(
            f"/api/registration/intakes/{year}",
            json={
                "registration_deadline": f"{year}-10-01T09:00:00Z",
                "term_start": f"{year}-09-01",
            },
            headers=staff,
        )
    ).status_code == 422

    number = student_no()
    await service.deliver(admitted(number, year))
    early = await client.post(f"/api/registration/intakes/{year}/close", headers=staff)
    assert early.status_code == 409

    past = future | {
        "registration_deadline": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    }
    assert (
        await client.put(f"/api/registration/intakes/{year}", json=past, headers=staff)
    ).status_code == 200
    closed = await client.post(f"/api/registration/intakes/{year}/close", headers=staff)
    assert closed.status_code == 200, closed.text
    assert closed.json() | {"closed_at": None} == {
        "intake_year": year,
        "closed_at": None,
        "already_closed": False,
        "applied": 1,
        "outcomes": {"withdrawn": 1},
    }
    again = await client.post(f"/api/registration/intakes/{year}/close", headers=staff)
    assert (again.json()["already_closed"], again.json()["applied"]) == (True, 0)
    frozen = await client.put(f"/api/registration/intakes/{year}", json=past, headers=staff)
    assert frozen.status_code == 422

    events = await service.outbox(number)
    assert [e.event_type for e in events] == [
        "RegistrationStatusChanged",
        "RegistrationStatusChanged",
        "RegistrationWithdrawn",
    ]
    scheduled = await service.outbox(f"intake:{year}")
    assert [e.event_type for e in scheduled] == ["IntakeScheduled", "IntakeScheduled"]
    unknown = await client.post("/api/registration/intakes/2099/close", headers=staff)
    assert unknown.status_code == 404
