"""Whole-system fault scenarios on a private stack, each proved on real outcomes.

1. A cohort's journeys (import, activation from the invitation e-mail, login, form,
   document and photo uploads, staff verification and approval) while every
   service is killed with SIGKILL and restarted in turn, the broker restarts with
   its storage kept and the SMTP server is away for a while: afterwards every
   student is completed, holds exactly one card, got exactly one e-mail per
   milestone; nothing lost, nothing doubled.
2. Every topic replayed from the beginning into every consumer (a fresh consumer
   group): no business document changes, no new event, no new e-mail or card.
3. Undecodable records on every consumed topic land in each consumer's dead
   letters while the events after them are handled; an event that failed because
   the card bucket was missing is replayed through the admin API once the bucket
   is back, and the card is issued.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from opr_shared.devstack.stack import Stack, with_direct_connection
from opr_shared.events.catalogue import CATALOGUE, consumed_by
from opr_shared.events.envelope import SERVICES, Envelope, topic_for
from opr_shared.smtpsink import envelope_recipients, mail_files, read_message, text_body
from opr_shared.testing.journey import bearer, form_answers, new_student_no, roster_row
from opr_shared.testing.metrics import totals_by_label
from opr_shared.testing.samples import blank_pdf, face_photo
from pymongo import AsyncMongoClient

# A bigger cohort (``make soak``) gets more time.
_SOAK = int(os.environ.get("OPR_RELIABILITY_COHORT") or 0)
pytestmark = [pytest.mark.e2e, pytest.mark.reliability, pytest.mark.timeout(600 + 20 * _SOAK)]

PASSWORD = "harbour lantern 77 quietly"
FORM = form_answers()
# The milestones a completed student with a card is told about, by subject.
MILESTONES = {
    "invitation": "Invitation to Program Registration",
    "account_activated": "University Account Activated",
    "form_received": "Registration Form Received",
    "registration_completed": "Acknowledgement of Program Registration",
    "card_ready": "Student Card Ready for Collection",
}
# Collections every service keeps for the plumbing, not for the business.
PLUMBING = {"outbox", "processed_events", "dead_letter_replays", "leases"}
TRANSIENT = {500, 502, 503, 504}
STAFF = {
    "registry_officer": "registry.officer@staff.university.example",
    "card_office": "card.office@staff.university.example",
    "admin": "admin@staff.university.example",
}
STAFF_PASSWORD = "Demo-Staff-2026!"


# --- talking to the system through faults ---------------------------------------------


async def call(
    client: httpx.AsyncClient, method: str, url: str, *, patience: float = 180, **kwargs: Any
) -> httpx.Response:
    """Send until the system gives a definite answer: a request that met a dead
    service (transport error, gateway 502/503/504, a 500) is sent again."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        try:
            answer = await client.request(method, url, **kwargs)
            if answer.status_code not in TRANSIENT:
                return answer
            problem = f"{answer.status_code} {answer.text[:200]}"
        except httpx.TransportError as exc:
            problem = repr(exc)
        if loop.time() > deadline:
            raise AssertionError(f"{method} {url}: no answer through the faults: {problem}")
        await asyncio.sleep(0.5)


async def until(
    probe: Callable[[], Awaitable[Any]], what: str, timeout: float = 180, every: float = 0.5
) -> Any:
    """``probe()`` until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        last = await probe()
        if last:
            return last
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


async def staff_login(client: httpx.AsyncClient, role: str) -> dict[str, str]:
    answer = await call(
        client,
        "POST",
        "/api/identity/sessions",
        json={"email": STAFF[role], "password": STAFF_PASSWORD},
    )
    assert answer.status_code == 200, answer.text
    return bearer(answer.json()["access_token"])


class Mailbox:
    """The mail sink's folder, read incrementally: each file is parsed once."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir
        self._seen: set[str] = set()
        self.messages: list[EmailMessage] = []

    def refresh(self) -> list[EmailMessage]:
        for path in mail_files(self.maildir):
            if path.name not in self._seen:
                self._seen.add(path.name)
                self.messages.append(read_message(path))
        return self.messages

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.refresh() if address in envelope_recipients(m)]

    def find(self, address: str, milestone: str) -> EmailMessage | None:
        for m in self.to(address):
            if milestone_of(m) == milestone:
                return m
        return None


def milestone_of(message: EmailMessage) -> str:
    subject = " ".join(str(message["Subject"]).split())
    for name, start in MILESTONES.items():
        if subject.startswith(start):
            return name
    return subject


# --- one student's journey -------------------------------------------------------------


@dataclass
class Staff:
    registry: dict[str, str]
    office: dict[str, str]
    admin: dict[str, str]

    @classmethod
    async def signed_in(cls, client: httpx.AsyncClient) -> Staff:
        """The three demo staff roles' headers, from fresh logins."""
        return cls(
            await staff_login(client, "registry_officer"),
            await staff_login(client, "card_office"),
            await staff_login(client, "admin"),
        )


@dataclass
class Journey:
    row: dict[str, Any]
    steps: list[str] = field(default_factory=list)
    resent_uploads: int = 0
    resent_mails: list[str] = field(default_factory=list)  # unconfirmed deliveries resent

    @property
    def number(self) -> str:
        return str(self.row["student_no"])

    @property
    def email(self) -> str:
        return str(self.row["personal_email"])


async def run_journey(
    client: httpx.AsyncClient, mailbox: Mailbox, staff: Staff, journey: Journey
) -> None:
    """Activation, login, form, document, photo, then the staff reviews."""
    row = journey.row
    invitation = await wait_for_mail(client, mailbox, staff, journey, "invitation")
    found = re.search(r"/activate\?token=([A-Za-z0-9_-]+)", text_body(invitation))
    assert found is not None, "no activation link in the invitation"
    activated = await call(
        client,
        "POST",
        "/api/identity/accounts/activate",
        json={"token": found.group(1), "password": PASSWORD},
    )
    # 409: an earlier attempt was committed before its answer was lost.
    assert activated.status_code in (200, 409), activated.text
    journey.steps.append("activated")

    login = await call(
        client,
        "POST",
        "/api/identity/sessions/jupas",
        json={
            "jupas_app_no": row["jupas_app_no"],
            "last_name": row["surname"],
            "first_name": row["given_names"],
            "date_of_birth": row["date_of_birth"],
        },
    )
    assert login.status_code == 200, login.text
    me = bearer(login.json()["access_token"])

    async def opened() -> bool:
        answer = await call(client, "GET", "/api/registration/me", headers=me)
        return answer.status_code == 200

    await until(opened, f"registration record of {journey.number}")
    submitted = await call(client, "POST", "/api/registration/me/submit", json=FORM, headers=me)
    assert submitted.status_code in (200, 409), submitted.text
    if submitted.status_code == 409:
        assert "only once" in submitted.json()["detail"], submitted.text
    journey.steps.append("submitted")

    async def upload(url: str, **request: Any) -> str:
        async def attempt() -> str | None:
            answer = await call(client, "POST", url, headers=me, **request)
            if answer.status_code == 409:  # StudentAdmitted has not reached documents yet
                return None
            # 200: the same file sent again (its first answer lost to a crash) while
            # the version it created waits for review: that version.
            assert answer.status_code in (200, 201), answer.text
            return str(answer.json()["id"])

        uploaded: str = await until(attempt, f"upload to {url}")
        return uploaded

    document = await upload(
        "/api/documents/me/documents",
        data={"doc_type": "hk_permanent_id_card"},
        files={"file": ("hkid.pdf", blank_pdf(), "application/pdf")},
    )
    photo = await upload(
        "/api/documents/me/photo", files={"file": ("me.jpg", face_photo(), "image/jpeg")}
    )
    journey.steps.append("uploaded")

    # Staff review what their queues show: an upload whose answer was lost to a
    # crash may have been sent again, and only the latest version is reviewable.
    document = await latest_pending(client, staff.registry, "document", journey, document)
    photo = await latest_pending(client, staff.office, "photo", journey, photo)
    verified = await call(
        client,
        "POST",
        f"/api/documents/documents/{document}/verify",
        json={"expiry_date": "2035-01-31"},
        headers=staff.registry,
    )
    assert verified.status_code == 200 or "already reviewed (verified)" in verified.text, (
        verified.text
    )
    approved = await call(
        client, "POST", f"/api/documents/photos/{photo}/approve", headers=staff.office
    )
    assert approved.status_code == 200 or "already reviewed (approved)" in approved.text, (
        approved.text
    )
    journey.steps.append("reviewed")


async def delivery_log(
    client: httpx.AsyncClient, staff: Staff, journey: Journey
) -> list[dict[str, Any]]:
    """The notifier's delivery log for the student (staff view)."""
    answer = await call(
        client,
        "GET",
        "/api/notifier/notifications",
        params={"student_no": journey.number},
        headers=staff.registry,
    )
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()
    return items


async def resend_unconfirmed(
    client: httpx.AsyncClient, staff: Staff, journey: Journey, missing: set[str]
) -> None:
    """A crash between a delivery's point of no return and the server's answer
    leaves the message sent "unconfirmed" in the delivery log (never twice, maybe
    not at all): staff resend the ones among ``missing`` the student did not get."""
    for item in await delivery_log(client, staff, journey):
        if item["template"] not in missing:
            continue
        if item["status"] == "sent" and item["confirmed"] is False:
            resent = await call(
                client,
                "POST",
                f"/api/notifier/notifications/{item['id']}/resend",
                headers=staff.registry,
            )
            assert resent.status_code == 202, resent.text
            journey.resent_mails.append(f"{journey.number}: {item['template']}")


async def wait_for_mail(
    client: httpx.AsyncClient,
    mailbox: Mailbox,
    staff: Staff,
    journey: Journey,
    milestone: str,
    timeout: float = 240,
) -> EmailMessage:
    """The student's ``milestone`` mail, as the student would get it: after a while
    without it, an unconfirmed delivery is resent by staff. On time-out the error
    carries the delivery log, which tells a lost event from a lost delivery."""
    loop = asyncio.get_running_loop()
    began = last_look = loop.time()
    while True:
        if (mail := mailbox.find(journey.email, milestone)) is not None:
            return mail
        now = loop.time()
        if now - last_look > 15:
            last_look = now
            await resend_unconfirmed(client, staff, journey, {milestone})
        if now - began > timeout:
            log = [
                {k: item.get(k) for k in ("template", "status", "attempts", "confirmed")}
                | {"error": item.get("last_error")}
                for item in await delivery_log(client, staff, journey)
            ]
            raise AssertionError(
                f"timed out waiting for {milestone} mail to {journey.email};"
                f" delivery log: {log or 'nothing queued'}"
            )
        await asyncio.sleep(0.5)


async def latest_pending(
    client: httpx.AsyncClient, headers: dict[str, str], kind: str, journey: Journey, fallback: str
) -> str:
    """The id of the student's item waiting in the review queue (the latest version)."""
    answer = await call(
        client,
        "GET",
        "/api/documents/queue",
        params={"kind": kind, "student_no": journey.number, "limit": 500},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    if not items:  # reviewed already, by an earlier attempt
        return fallback
    latest = max(items, key=lambda i: int(i.get("version") or 0))
    if len(items) > 1 or int(latest.get("version") or 1) > 1:
        journey.resent_uploads += 1
    return str(latest["id"])


async def import_cohort(
    client: httpx.AsyncClient, staff: Staff, rows: list[dict[str, Any]]
) -> None:
    answer = await call(
        client,
        "POST",
        "/api/identity/admissions/import?invite=true",
        json=rows,
        headers=staff.registry,
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["created"], answer.json()["rejected"]) == (len(rows), 0), answer.text


async def open_collection_days(client: httpx.AsyncClient, staff: Staff, capacity: int) -> None:
    day = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    answer = await call(
        client,
        "PUT",
        "/api/card/schedule",
        headers=staff.office,
        json={
            "venue": "Student Card Office, Room 1101",
            "bring": ["Hong Kong Identity Card or passport"],
            "days": [
                {"date": day, "windows": [{"start": "09:00", "end": "17:00", "capacity": capacity}]}
            ],
        },
    )
    assert answer.status_code == 200, answer.text


# --- outcomes ----------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the system did for a cohort, and what is missing or doubled."""

    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)  # unconfirmed deliveries resent by staff
    emails: int = 0
    cards: int = 0


async def settled_outcome(
    client: httpx.AsyncClient,
    mailbox: Mailbox,
    staff: Staff,
    journeys: list[Journey],
    milestones: tuple[str, ...] = tuple(MILESTONES),
    timeout: float = 120,
) -> Outcome:
    """Wait until each student is completed with a card and every milestone mail
    arrived (or the time is up), give copies a moment to show up, then count."""
    outcome = Outcome()

    async def completed(j: Journey) -> bool:
        answer = await call(
            client, "GET", f"/api/registration/registrations/{j.number}", headers=staff.registry
        )
        return answer.status_code == 200 and answer.json()["status"] == "completed"

    async def carded(j: Journey) -> dict[str, Any] | None:
        answer = await call(client, "GET", f"/api/card/holders/{j.number}", headers=staff.office)
        body: dict[str, Any] = answer.json()
        ready = answer.status_code == 200 and body["card_no"] and body["slot_id"]
        return body if ready else None

    async def mailed(j: Journey) -> bool:
        got = {milestone_of(m) for m in mailbox.to(j.email)}
        if set(milestones) <= got:
            return True
        await resend_unconfirmed(client, staff, j, set(milestones) - got)
        return False

    async def settle(j: Journey, probe: Callable[[Journey], Awaitable[Any]], what: str) -> None:
        try:
            await until(lambda: probe(j), f"{what} of {j.number}", timeout)
        except AssertionError:
            outcome.lost.append(f"{j.number}: {what} (journey reached {j.steps})")

    await asyncio.gather(
        *(
            settle(j, probe, what)
            for j in journeys
            for probe, what in ((completed, "completed"), (carded, "card"), (mailed, "mails"))
        )
    )
    await asyncio.sleep(5)  # time for a second copy of anything to arrive
    for j in journeys:
        holder = await call(client, "GET", f"/api/card/holders/{j.number}", headers=staff.office)
        cards = holder.json().get("cards", []) if holder.status_code == 200 else []
        outcome.cards += len(cards)
        if len(cards) > 1:
            outcome.doubled.append(f"{j.number}: {len(cards)} cards")
        mails = Counter(milestone_of(m) for m in mailbox.to(j.email))
        outcome.emails += sum(mails.values())
        for name, count in mails.items():
            if count > 1:
                outcome.doubled.append(f"{j.number}: {count} x {name}")
        unexpected = set(mails) - set(milestones)
        if unexpected:
            outcome.doubled.append(f"{j.number}: unexpected mail {sorted(unexpected)}")
        outcome.resent.extend(j.resent_mails)
    return outcome


@dataclass
class FaultLog:
    injected: int = 0
    timeline: list[str] = field(default_factory=list)
    began: float = field(default_factory=time.monotonic)

    def note(self, what: str, *, fault: bool = True) -> None:
        self.injected += fault
        self.timeline.append(f"{time.monotonic() - self.began:.0f}s {what}")


async def inject_faults(stack: Stack, faults: FaultLog, pause: float = 1.0) -> None:
    """Each service killed (SIGKILL) and restarted in turn; after the first one the
    broker restarts with its storage kept, then the SMTP server goes away for a
    while (during the next crashes)."""

    async def crash(service: str) -> None:
        await asyncio.to_thread(stack.kill_service, service)
        faults.note(f"kill -9 {service}")
        await asyncio.sleep(1.0)
        await asyncio.to_thread(stack.start_service, service)
        faults.note(f"{service} back", fault=False)
        await asyncio.sleep(pause)

    async def mail_outage(seconds: float) -> None:
        smtp = stack.process("smtp")
        await asyncio.to_thread(smtp.stop)
        faults.note("smtp down")
        await asyncio.sleep(seconds)
        await asyncio.to_thread(smtp.start)
        faults.note("smtp back", fault=False)

    first, *rest = SERVICES
    await crash(first)
    await asyncio.to_thread(stack.restart_component, "kafka")
    faults.note("broker restarted (storage kept)")
    await asyncio.sleep(pause)
    outage = asyncio.create_task(mail_outage(12))
    for service in rest:
        await crash(service)
    await outage


# --- Kafka and database observation ------------------------------------------------------


async def read_all(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` (no consumer group). The broker's end offsets are a
    lower bound only (Tansu reports them behind the latest batch), so this reads on
    until a poll brings nothing."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            return []
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[Any] = []
        while True:
            batch = await consumer.getmany(*tps, timeout_ms=1000)
            for messages in batch.values():
                records.extend(messages)
            if not batch:
                positions = [await consumer.position(tp) for tp in tps]
                if all(p >= ends[tp] for p, tp in zip(positions, tps, strict=True)):
                    return records
    finally:
        await consumer.stop()


async def record_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """How many records each topic holds."""
    return {topic: len(await read_all(bootstrap, topic)) for topic in topics}


# The topic each event type is published on.
TOPIC_OF = {cls.event_type: topic_for(cls.producer) for cls in CATALOGUE.values()}


def consumed_topics(service: str) -> list[str]:
    """The topics ``service`` consumes (per the catalogue's CONSUMERS table)."""
    return sorted({TOPIC_OF[t] for t in consumed_by(service)})


async def snapshot(stack: Stack) -> dict[str, dict[str, list[Any]]]:
    """Every business collection of every service database, sorted by id."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        with_direct_connection(stack.endpoints.mongodb_uri), tz_aware=True
    )
    try:
        state: dict[str, dict[str, list[Any]]] = {}
        for service in SERVICES:
            db = client[service]
            state[service] = {}
            for name in sorted(await db.list_collection_names()):
                if name in PLUMBING or name.startswith("system."):
                    continue
                rows = await db[name].find().to_list()
                state[service][name] = sorted(rows, key=lambda r: repr(r.get("_id")))
        return state
    finally:
        await client.close()


async def processed(stack: Stack, service: str, event_ids: list[str]) -> set[str]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        with_direct_connection(stack.endpoints.mongodb_uri)
    )
    try:
        rows = await client[service]["processed_events"].find({"_id": {"$in": event_ids}}).to_list()
        return {str(r["_id"]) for r in rows}
    finally:
        await client.close()


def differences(
    before: dict[str, dict[str, list[Any]]], after: dict[str, dict[str, list[Any]]]
) -> list[str]:
    changed: list[str] = []
    for service in SERVICES:
        names = set(before.get(service, {})) | set(after.get(service, {}))
        for name in sorted(names):
            old = before.get(service, {}).get(name, [])
            new = after.get(service, {}).get(name, [])
            if old != new:
                changed.append(f"{service}.{name} ({len(old)} -> {len(new)} documents)")
    return changed


async def quiet(
    stack: Stack,
    groups: dict[str, str] | None = None,
    settle: float = 3.0,
    timeout: float = 120,
) -> dict[str, dict[str, list[Any]]]:
    """A snapshot once every service's consumer group has read its topics to the
    end and two snapshots taken ``settle`` seconds apart agree (outboxes drained,
    mails sent, consumers idle). ``groups``: each service's consumer group (by
    default the service's name)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    groups = groups or {s: s for s in SERVICES}
    previous = await snapshot(stack)
    while True:
        await asyncio.sleep(settle)
        current = await snapshot(stack)
        behind = await consumer_lag(stack.endpoints.kafka_bootstrap, groups)
        if current == previous and not behind:
            return current
        if loop.time() > deadline:
            raise AssertionError(
                f"the system never went quiet: {differences(previous, current)};"
                f" consumers behind: {behind}"
            )
        previous = current


async def consumer_lag(bootstrap: str, groups: dict[str, str]) -> dict[str, int]:
    """Records each service's group has yet to handle on the topics it consumes
    (the group's committed offsets against the partitions' ends)."""
    behind: dict[str, int] = {}
    for service, group in groups.items():
        # A member of no assignment: it only reads the group's committed offsets.
        reader = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        await reader.start()
        try:
            known = set(await reader.topics())
            tps = [
                TopicPartition(topic, p)
                for topic in consumed_topics(service)
                if topic in known
                for p in reader.partitions_for_topic(topic) or ()
            ]
            ends = await reader.end_offsets(tps) if tps else {}
            lag = 0
            for tp, end in ends.items():
                lag += max(0, end - (await reader.committed(tp) or 0))
            if lag:
                behind[service] = lag
        finally:
            await reader.stop()
    return behind


async def consumed_counts(client: httpx.AsyncClient, stack: Stack, service: str) -> Counter[str]:
    """The service's consumed records by outcome (since its processes started)."""
    counts: Counter[str] = Counter()
    for url in stack.process_urls(service):
        answer = await call(client, "GET", f"{url}/metrics")
        totals = totals_by_label(answer.text, "events_consumed_total", "outcome")
        counts.update({outcome: int(value) for outcome, value in totals.items()})
    return counts


# --- the scenarios ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def cohort_log() -> dict[str, Any]:
    """What the fault scenario leaves for the scenarios after it."""
    return {}


async def clean_cohort(stack: Stack, size: int) -> list[Journey]:
    """``size`` students through the whole journey, without faults."""
    assert stack.maildir is not None
    mailbox = Mailbox(stack.maildir)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        staff = await Staff.signed_in(client)
        await open_collection_days(client, staff, 1000)
        journeys = [Journey(roster_row(new_student_no())) for _ in range(size)]
        await import_cohort(client, staff, [j.row for j in journeys])
        await asyncio.gather(*(run_journey(client, mailbox, staff, j) for j in journeys))
        outcome = await settled_outcome(client, mailbox, staff, journeys)
    assert (outcome.lost, outcome.doubled) == ([], [])
    return journeys


async def test_a_cohort_survives_crashes_a_broker_restart_and_a_mail_outage(
    private_system: Stack,
    report: Callable[..., None],
    cohort_log: dict[str, Any],
    cohort_size: int,
) -> None:
    stack = private_system
    assert stack.maildir is not None
    size = cohort_size
    mailbox = Mailbox(stack.maildir)
    faults = FaultLog()
    began = time.monotonic()
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        staff = await Staff.signed_in(client)
        await open_collection_days(client, staff, size + 1000)
        journeys = [Journey(roster_row(new_student_no())) for _ in range(size)]
        await import_cohort(client, staff, [j.row for j in journeys])

        async def staggered(i: int, j: Journey) -> None:
            await asyncio.sleep(i * 0.7)
            await run_journey(client, mailbox, staff, j)
            finished.append(time.monotonic() - faults.began)

        finished: list[float] = []

        chaos = asyncio.create_task(inject_faults(stack, faults))
        results = await asyncio.gather(
            *(staggered(i, j) for i, j in enumerate(journeys)), return_exceptions=True
        )
        await chaos
        if finished:
            faults.timeline.append(
                f"journeys done between {min(finished):.0f}s and {max(finished):.0f}s"
            )
        failed = [f"{j.number}: {r!r}" for j, r in zip(journeys, results, strict=True) if r]
        if failed:
            report("faults", {"journeys": size, "journeys_failed": len(failed)})
        assert failed == [], failed
        outcome = await settled_outcome(client, mailbox, staff, journeys)
        # An outage taken for a bad message would have parked an effect in the dead letters.
        dead = {s: len(await dead_letters(client, s, staff.admin)) for s in SERVICES}

    cohort_log["journeys"] = journeys
    figures = {
        "journeys": size,
        "faults": faults.injected,
        "journeys_failed": len(failed),
        "lost": len(outcome.lost),
        "duplicated": len(outcome.doubled),
        "emails": outcome.emails,
        "cards": outcome.cards,
        "uploads_resent": sum(j.resent_uploads for j in journeys),
        "dead_letters": sum(dead.values()),
        "unconfirmed_resent": len(outcome.resent),
        "seconds": round(time.monotonic() - began, 1),
    }
    report("faults", figures, {"timeline": faults.timeline, "resent": outcome.resent})
    assert failed == []
    assert outcome.lost == [], outcome.lost
    assert outcome.doubled == [], outcome.doubled
    assert outcome.cards == size
    assert outcome.emails == size * len(MILESTONES)
    assert faults.injected == len(SERVICES) + 2, faults.timeline
    assert dead == dict.fromkeys(SERVICES, 0)


async def test_replaying_every_topic_into_every_consumer_changes_nothing(
    private_system: Stack, report: Callable[..., None], cohort_log: dict[str, Any]
) -> None:
    stack = private_system
    assert stack.maildir is not None
    if "journeys" not in cohort_log:  # run on its own: give the replay something to replay
        cohort_log["journeys"] = await clean_cohort(stack, 3)
    topics = sorted({t for s in SERVICES for t in consumed_topics(s)})
    bootstrap = stack.endpoints.kafka_bootstrap
    phases: dict[str, float] = {}
    mark = time.monotonic()

    def lap(name: str) -> None:
        nonlocal mark
        phases[name] = round(time.monotonic() - mark, 1)
        mark = time.monotonic()

    before = await quiet(stack)
    lap("quiet_before")
    offsets_before = await record_counts(bootstrap, [*topics, topic_for("notifier")])
    mails_before = len(mail_files(stack.maildir))
    began = time.monotonic()

    group = f"replay-{uuid.uuid4().hex[:8]}"
    consumers = [s for s in SERVICES if consumed_topics(s)]
    assert consumers == list(SERVICES)
    replay_groups = {s: f"{group}-{s}" for s in consumers}
    # The lag probe sees what a group has not read: the new groups have read nothing.
    assert set(await consumer_lag(bootstrap, replay_groups)) == set(consumers)
    await asyncio.gather(
        *(
            asyncio.to_thread(stack.restart_service, s, {"KAFKA_GROUP_ID": f"{group}-{s}"})
            for s in consumers
        )
    )
    lap("restart")
    outcomes: dict[str, Counter[str]] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        for service in consumers:
            records = sum((await record_counts(bootstrap, consumed_topics(service))).values())

            async def caught_up(
                service: str = service, records: int = records
            ) -> Counter[str] | None:
                counts = await consumed_counts(client, stack, service)
                return counts if sum(counts.values()) >= records else None

            outcomes[service] = await until(caught_up, f"{service} replaying {records} records")
    lap("catch_up")
    after = await quiet(stack, replay_groups)
    lap("quiet_after")
    offsets_after = await record_counts(bootstrap, [*topics, topic_for("notifier")])
    mails_after = len(mail_files(stack.maildir))
    # The services go on under the replay groups (now at the end of every topic).

    replayed = sum(sum(c.values()) for c in outcomes.values())
    handled_again = {s: c["handled"] for s, c in outcomes.items() if c["handled"]}
    dead_lettered = {s: c["dead_lettered"] for s, c in outcomes.items() if c["dead_lettered"]}
    changed = differences(before, after)
    report(
        "redelivery",
        {
            "records_replayed": replayed,
            "duplicates_ignored": sum(c["duplicate"] for c in outcomes.values()),
            "handled_again": sum(handled_again.values()),
            "collections_changed": len(changed),
            "new_events": sum(offsets_after.values()) - sum(offsets_before.values()),
            "new_emails": mails_after - mails_before,
            "seconds": round(time.monotonic() - began, 1),
            "phases": phases,
        },
    )
    assert replayed > 0
    assert changed == []
    assert offsets_after == offsets_before
    assert mails_after == mails_before
    assert handled_again == {}
    assert dead_lettered == {}


async def publish_raw(bootstrap: str, topic: str, key: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


async def dead_letters(
    client: httpx.AsyncClient, service: str, admin: dict[str, str]
) -> list[dict[str, Any]]:
    answer = await call(client, "GET", f"/api/{service}/admin/dead-letters", headers=admin)
    assert answer.status_code == 200, answer.text
    letters: list[dict[str, Any]] = answer.json()
    return letters


async def test_poison_records_are_dead_lettered_consumption_goes_on_and_replay_after_a_fix_works(
    private_system: Stack, report: Callable[..., None]
) -> None:
    stack = private_system
    assert stack.maildir is not None
    assert stack.infra is not None
    bootstrap = stack.endpoints.kafka_bootstrap
    mailbox = Mailbox(stack.maildir)
    consumers = {s: consumed_topics(s) for s in SERVICES if consumed_topics(s)}
    topics = sorted({t for ts in consumers.values() for t in ts})
    assert set(consumers) == set(SERVICES)
    assert len(topics) == 4, topics
    first = Journey(roster_row(new_student_no()))
    year = 2040 + uuid.uuid4().int % 50
    intake_key = f"intake:{year}"
    poison = f"not an event {uuid.uuid4().hex}".encode()
    began = time.monotonic()

    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        staff = await Staff.signed_in(client)
        await open_collection_days(client, staff, 1000)
        # Undecodable records on every consumed topic, on the partitions the good
        # events after them will take (same keys).
        for topic in topics:
            await publish_raw(bootstrap, topic, first.number, poison)
        await publish_raw(bootstrap, topic_for("registration"), intake_key, poison)

        # Good events after them: a whole journey, and an intake calendar (the one
        # event identity consumes).
        calendar = await call(
            client,
            "PUT",
            f"/api/registration/intakes/{year}",
            json={
                "registration_deadline": f"{year}-08-13T09:00:00Z",
                "term_start": f"{year}-09-01",
            },
            headers=staff.registry,
        )
        assert calendar.status_code == 200, calendar.text
        await import_cohort(client, staff, [first.row])
        await run_journey(client, mailbox, staff, first)
        outcome = await settled_outcome(client, mailbox, staff, [first])
        assert (outcome.lost, outcome.doubled) == ([], [])

        # Each consumer dead-lettered the poison from each topic it reads.
        async def poisoned(service: str) -> set[str] | None:
            letters = await dead_letters(client, service, staff.admin)
            mine = {
                d["source_topic"]
                for d in letters
                if d["error"].startswith("undecodable") and d["event_type"] is None
            }
            return mine if mine >= set(consumers[service]) else None

        dead = {
            s: await until(lambda s=s: poisoned(s), f"{s}'s dead letters", 60) for s in consumers
        }

        # ... and handled the good events that came after the poison on each topic.
        after_poison: dict[str, list[str]] = {}
        for topic in topics:
            for record in await read_all(bootstrap, topic):
                if (
                    record.key in (first.number.encode(), intake_key.encode())
                    and record.value != poison
                ):
                    envelope = Envelope.from_bytes(record.value)
                    after_poison.setdefault(envelope.event_type, []).append(str(envelope.event_id))
        unhandled: list[str] = []
        for service, service_topics in consumers.items():
            for topic in service_topics:
                wanted = [
                    event_id
                    for event_type, ids in after_poison.items()
                    if event_type in consumed_by(service) and TOPIC_OF[event_type] == topic
                    for event_id in ids
                ]
                if not wanted:
                    unhandled.append(f"{service} <- {topic}: no good event to check")
                    continue
                missing = set(wanted) - await processed(stack, service, wanted)
                if missing:
                    unhandled.append(f"{service} <- {topic}: {len(missing)} not handled")

        # A precondition missing: the card bucket is gone while a photo is approved.
        second = Journey(roster_row(new_student_no()))
        bucket = stack.infra.data_dir / "s3" / "card"
        hidden = bucket.with_name(f".card-away-{uuid.uuid4().hex[:6]}")
        assert bucket.is_dir(), f"no card bucket folder at {bucket}"
        shutil.move(bucket, hidden)
        try:
            await import_cohort(client, staff, [second.row])
            await run_journey(client, mailbox, staff, second)

            async def photo_letter() -> dict[str, Any] | None:
                for d in await dead_letters(client, "card", staff.admin):
                    if d["event_type"] == "PhotoApproved":
                        return d
                return None

            letter = await until(photo_letter, "the card's dead-lettered PhotoApproved", 120)
            holder = await call(
                client, "GET", f"/api/card/holders/{second.number}", headers=staff.office
            )
            assert holder.json()["cards"] == []
        finally:
            shutil.move(hidden, bucket)  # the fix
        replayed = await call(
            client,
            "POST",
            "/api/card/admin/dead-letters/replay",
            json={"ids": [letter["id"]]},
            headers=staff.admin,
        )
        assert replayed.status_code == 200, replayed.text
        again = await call(
            client,
            "POST",
            "/api/card/admin/dead-letters/replay",
            json={"ids": [letter["id"]]},
            headers=staff.admin,
        )
        after_fix = await settled_outcome(client, mailbox, staff, [second])
        still_poison = await call(
            client, "POST", "/api/notifier/admin/dead-letters/replay", headers=staff.admin
        )

    report(
        "poison",
        {
            "topics_poisoned": len(topics),
            "dead_letters": sum(len(v) for v in dead.values()),
            "consumers": len(consumers),
            "good_after_poison_unhandled": len(unhandled),
            "replay": replayed.json()["outcomes"],
            "replay_again": again.json()["outcomes"],
            "lost": len(after_fix.lost),
            "duplicated": len(after_fix.doubled),
            "seconds": round(time.monotonic() - began, 1),
        },
    )
    assert dead == {s: set(t) for s, t in consumers.items()}
    assert unhandled == []
    assert letter["error"]
    assert letter["attempts"] >= 1
    assert replayed.json()["outcomes"] == {"handled": 1}
    assert again.json()["outcomes"] == {"already_replayed": 1}
    assert (after_fix.lost, after_fix.doubled, after_fix.cards) == ([], [], 1)
    # Undecodable records stay dead: replaying them fails again and changes nothing.
    assert still_poison.status_code == 200, still_poison.text
    assert set(still_poison.json()["outcomes"]) == {"failed"}
