"""Notifier against real servers: MongoDB from the session infrastructure and an
SMTP sink of its own (so it can refuse mail without disturbing anyone else)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from notifier.domain.messages import House
from notifier.handlers.delivery import DeliveryWorker
from notifier.handlers.milestones import Milestones
from notifier.handlers.reminders import ReminderWorker
from notifier.messaging import subscriptions
from notifier.settings import Settings
from notifier.smtp import smtp_sender
from notifier.store import CONTACTS, INDEXES, INTAKES, NOTIFICATIONS, PROGRESS
from opr_shared.events.catalogue import (
    AccountActivated,
    AdmissionRoute,
    DocumentRejected,
    DocumentType,
    DocumentUploaded,
    IntakeScheduled,
    InvitationIssued,
    OutstandingItem,
    OutstandingState,
    PhotoRejected,
    RegistrationCompleted,
    RegistrationStatus,
    RegistrationStatusChanged,
    StudentAdmitted,
    subject_of,
)
from opr_shared.events.envelope import Envelope, EventPayload
from opr_shared.localinfra import Endpoints, free_port
from opr_shared.messaging.consumer import EventConsumer, Outcome, Record
from opr_shared.smtpsink import (
    accept_mail,
    envelope_recipients,
    mail_files,
    read_mailbox,
    refuse_mail,
    text_body,
    wait_for_mails,
)
from opr_shared.store.mongo import OUTBOX, UnitOfWork, ensure_indexes, plumbing_indexes
from opr_shared.testing.dbcounts import queries_on
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

pytestmark = pytest.mark.integration

HOUSE = House(portal_url="https://portal.example/", enquiry_email="progreg@example.edu.hk")


@dataclass
class Sink:
    port: int
    maildir: Path

    def mails_to(self, address: str) -> list[Any]:
        return [m for m in read_mailbox(self.maildir) if address in envelope_recipients(m)]


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sink]:
    """An SMTP sink process this module owns."""
    maildir = tmp_path_factory.mktemp("notifier-mail")
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "opr_shared.smtpsink",
            "--port",
            str(port),
            "--maildir",
            str(maildir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import socket
        import time

        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield Sink(port, maildir)
    finally:
        process.terminate()
        process.wait(10)


class Notifier:
    """The notifier's consumer and delivery worker over a private database."""

    def __init__(self, mongo: AsyncMongoClient[dict[str, Any]], db: str, sink: Sink) -> None:
        self.uow = UnitOfWork(mongo, db, "notifier")
        self.db = mongo[db]
        self.consumer = EventConsumer(subscriptions(HOUSE), self.uow, _NoDeadLetters())
        settings = Settings(smtp_host="127.0.0.1", smtp_port=sink.port, smtp_timeout_seconds=5)
        self.worker = DeliveryWorker(
            self.uow,
            smtp_sender(settings),
            mail_from=settings.mail_from,
            poll_seconds=0.1,
            max_attempts=8,
            max_backoff_seconds=0.5,
            lease_seconds=2,
        )

    async def consume(self, event: EventPayload | Envelope) -> Outcome:
        envelope = event if isinstance(event, Envelope) else wrap(event)
        return await self.consumer.handle(
            Record(
                topic=envelope.topic,
                partition=0,
                offset=0,
                key=envelope.key,
                value=envelope.to_bytes(),
                headers={k: v.encode() for k, v in envelope.headers().items()},
            )
        )

    async def drain(self, timeout: float = 30) -> None:
        """Deliver until nothing is pending or being sent."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self.db[NOTIFICATIONS].count_documents(
            {"status": {"$in": ["pending", "sending"]}}
        ):
            assert loop.time() < deadline, "deliveries did not finish"
            if await self.worker.settle_abandoned() + await self.worker.deliver_due() == 0:
                await asyncio.sleep(0.1)

    async def notifications(self, student_no: str) -> list[dict[str, Any]]:
        return await self.db[NOTIFICATIONS].find({"student_no": student_no}).to_list()


class _NoDeadLetters:
    async def dead_letter(self, record: Record, error: str, attempts: int) -> None:
        raise AssertionError(f"dead-lettered: {error}")


def wrap(payload: EventPayload) -> Envelope:
    return Envelope.wrap(payload, subject=subject_of(payload), correlation_id=str(uuid.uuid4()))


@pytest.fixture
async def notifier(infra: Endpoints, sink: Sink) -> AsyncIterator[Notifier]:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    db = f"notifier_t_{uuid.uuid4().hex[:10]}"
    await ensure_indexes(mongo[db], {**plumbing_indexes(), **INDEXES})
    yield Notifier(mongo, db, sink)
    await mongo.close()


def scheduled(year: int) -> IntakeScheduled:
    """The intake of ``year``: registration until 14 August 17:00 HKT, term from 1 September."""
    return IntakeScheduled(
        intake_year=year,
        registration_deadline=datetime(year, 8, 14, 9, tzinfo=UTC),
        term_start=date(year, 9, 1),
        age_cutoff=date(year, 9, 1),
    )


def student() -> tuple[str, str]:
    number = f"2{uuid.uuid4().int % 10**7:07d}"
    return number, f"s{number}.{uuid.uuid4().hex[:6]}@example.com"


def admitted(number: str, email: str) -> StudentAdmitted:
    return StudentAdmitted(
        student_no=number,
        surname="CHAN",
        given_names="Tai Man",
        chinese_name="陳大文",
        date_of_birth=date(2008, 3, 1),
        personal_email=email,
        mobile="+85291234567",
        programme_code="BBA",
        programme_name="Bachelor of Business Administration",
        intake_year=2031,
        admission_route=AdmissionRoute.JUPAS,
    )


def invitation(number: str, email: str) -> InvitationIssued:
    return InvitationIssued(
        student_no=number,
        personal_email=email,
        surname="CHAN",
        given_names="Tai Man",
        chinese_name="陳大文",
        activation_url=f"https://portal.example/activate?token={uuid.uuid4().hex}",
        activation_expires_at=datetime(2031, 8, 15, tzinfo=UTC),
        intake_year=2031,
        invitation_no=1,
    )


async def test_an_event_redelivered_three_times_sends_one_email(
    notifier: Notifier, sink: Sink
) -> None:
    number, email = student()
    envelope = wrap(invitation(number, email))
    outcomes = [await notifier.consume(envelope) for _ in range(3)]
    assert outcomes == [Outcome.HANDLED, Outcome.DUPLICATE, Outcome.DUPLICATE]
    await notifier.drain()
    await asyncio.sleep(0.5)
    mails = sink.mails_to(email)
    assert len(mails) == 1
    assert "Invitation to Program Registration" in " ".join(str(mails[0]["Subject"]).split())
    body = text_body(mails[0])
    assert "Dear Tai Man CHAN," in body
    assert "陳大文 同學" in body
    [doc] = await notifier.notifications(number)
    assert doc["status"] == "sent"
    assert doc["confirmed"] is True
    assert mails[0]["Message-ID"] == f"<{doc['_id']}@notifier.registration>"
    sent = await notifier.db[OUTBOX].find({"event_type": "NotificationSent"}).to_list()
    assert len(sent) == 1


async def test_smtp_down_for_a_while_then_back_delivers_everything_once(
    notifier: Notifier, sink: Sink
) -> None:
    students = [student() for _ in range(4)]
    refuse_mail(sink.maildir)
    try:
        for number, email in students:
            await notifier.consume(invitation(number, email))
        # Every message meets the 451 at least once and is scheduled again.
        for _ in range(3):
            await notifier.worker.deliver_due()
        for number, email in students:
            assert sink.mails_to(email) == []
            [doc] = await notifier.notifications(number)
            assert doc["status"] == "pending"
            assert doc["attempts"] >= 1
            assert "451" in doc["last_error"]
            assert "@" not in doc["last_error"]
    finally:
        accept_mail(sink.maildir)
    await notifier.drain()
    await asyncio.sleep(0.5)
    for number, email in students:
        assert len(sink.mails_to(email)) == 1
        [doc] = await notifier.notifications(number)
        assert doc["status"] == "sent"
        assert [e["event"] for e in doc["log"]][-1] == "sent"


async def test_the_last_failed_attempt_is_failed_and_staff_can_resend(
    notifier: Notifier, sink: Sink
) -> None:
    number, email = student()
    notifier.worker.max_attempts = 2
    refuse_mail(sink.maildir)
    try:
        await notifier.consume(invitation(number, email))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while (await notifier.notifications(number))[0]["status"] != "failed":
            assert loop.time() < deadline
            await notifier.worker.deliver_due()
            await asyncio.sleep(0.2)
    finally:
        accept_mail(sink.maildir)
    failed = await notifier.db[OUTBOX].find({"event_type": "NotificationFailed"}).to_list()
    assert len(failed) == 1
    assert sink.mails_to(email) == []


async def test_a_milestone_before_the_contact_waits_then_goes_out(
    notifier: Notifier, sink: Sink
) -> None:
    number, email = student()
    await notifier.consume(scheduled(2031))
    await notifier.consume(
        PhotoRejected(
            photo_id=uuid.uuid4(),
            student_no=number,
            reasons=["The photo is blurred."],
            rejected_by="system",
            rejected_at=datetime.now(UTC),
        )
    )
    [parked] = await notifier.notifications(number)
    assert parked["status"] == "awaiting_contact"
    await notifier.drain()
    assert sink.mails_to(email) == []

    await notifier.consume(admitted(number, email))
    await notifier.drain()
    [mail] = await wait_for_mails(sink.maildir, lambda m: email in envelope_recipients(m))
    body = text_body(mail)
    assert "The photo is blurred." in body
    assert "no later than the term start on 01/09/2031" in body
    [doc] = await notifier.notifications(number)
    assert "facts" not in doc


async def test_acknowledgement_goes_to_both_addresses_in_one_message(
    notifier: Notifier, sink: Sink
) -> None:
    number, email = student()
    university = f"u{number}@connect.example.edu.hk"
    await notifier.consume(admitted(number, email))
    await notifier.consume(
        AccountActivated(
            student_no=number,
            university_email=university,
            personal_email=email,
            activated_at=datetime.now(UTC),
        )
    )
    consent = OutstandingItem(
        item="parent_consent_form",
        label="Parent/guardian consent form",
        compulsory=False,
        due_by=date(2031, 9, 1),
        state=OutstandingState.MISSING,
    )
    await notifier.consume(
        RegistrationCompleted(
            student_no=number,
            intake_year=2031,
            university_email=None,
            personal_email=email,
            outstanding=[consent],
            completed_at=datetime.now(UTC),
        )
    )
    await notifier.drain()
    await asyncio.sleep(0.3)
    templates = sorted(d["template"] for d in await notifier.notifications(number))
    assert templates == ["account_activated", "registration_completed"]
    [ack] = [
        m for m in sink.mails_to(email) if "Acknowledgement" in " ".join(str(m["Subject"]).split())
    ]
    assert envelope_recipients(ack) == [university, email]
    assert "Parent/guardian consent form (due by 01/09/2031)" in text_body(ack)


async def test_a_milestone_reads_the_contact_once_and_the_intake_only_to_show_its_dates(
    notifier: Notifier, sink: Sink
) -> None:
    number, email = student()
    university = f"u{number}@connect.example.edu.hk"
    await notifier.consume(scheduled(2031))
    await notifier.consume(admitted(number, email))
    contacts, intakes = (
        await queries_on(notifier.db, CONTACTS),
        await queries_on(notifier.db, INTAKES),
    )
    activated = AccountActivated(
        student_no=number,
        university_email=university,
        personal_email=email,
        activated_at=datetime.now(UTC),
    )
    assert await notifier.consume(activated) is Outcome.HANDLED
    # Read once, then written: the message and the release of parked ones use that.
    assert await queries_on(notifier.db, CONTACTS) == contacts + 1
    assert await queries_on(notifier.db, INTAKES) == intakes
    rejected = PhotoRejected(
        photo_id=uuid.uuid4(),
        student_no=number,
        reasons=["The photo is blurred."],
        rejected_by="system",
        rejected_at=datetime.now(UTC),
    )
    assert await notifier.consume(rejected) is Outcome.HANDLED
    assert await queries_on(notifier.db, INTAKES) == intakes + 1  # it shows the term start
    await notifier.drain()
    mails = await wait_for_mails(
        sink.maildir, lambda m: university in envelope_recipients(m), count=2
    )
    bodies = {" ".join(str(m["Subject"]).split()): text_body(m) for m in mails}
    assert all(envelope_recipients(m) == [university, email] for m in mails)
    [photo] = [body for subject, body in bodies.items() if "photo" in subject.lower()]
    assert "no later than the term start on 01/09/2031" in photo
    assert "Dear Tai Man CHAN," in photo


async def test_a_consumed_milestone_is_queued_without_a_lookup_and_a_copy_is_refused(
    notifier: Notifier,
) -> None:
    number, email = student()
    await notifier.consume(admitted(number, email))
    before = await queries_on(notifier.db, NOTIFICATIONS)
    rejected = PhotoRejected(
        photo_id=uuid.uuid4(),
        student_no=number,
        reasons=["The photo is blurred."],
        rejected_by="system",
        rejected_at=datetime.now(UTC),
    )
    envelope = wrap(rejected)
    assert await notifier.consume(envelope) is Outcome.HANDLED
    # The event's processed mark is what keeps a second run out: no look-up first.
    assert await queries_on(notifier.db, NOTIFICATIONS) == before
    assert await notifier.consume(envelope) is Outcome.DUPLICATE
    # Queued again past that guard, the message's unique key refuses the copy.
    milestones = Milestones(HOUSE)
    with pytest.raises(DuplicateKeyError):
        await notifier.uow.run(lambda tx: milestones.on_photo_rejected(tx, envelope, rejected))
    [doc] = await notifier.notifications(number)
    assert doc["template"] == "photo_rejected"


async def test_rejected_document_email_says_why_and_how(notifier: Notifier, sink: Sink) -> None:
    number, email = student()
    await notifier.consume(admitted(number, email))
    await notifier.consume(
        DocumentRejected(
            document_id=uuid.uuid4(),
            student_no=number,
            doc_type=DocumentType.PASSPORT,
            version=2,
            reason="The passport expires before 1 September 2031.",
            rejected_by="officer.lam",
            rejected_at=datetime.now(UTC),
        )
    )
    await notifier.drain()
    [mail] = await wait_for_mails(sink.maildir, lambda m: email in envelope_recipients(m))
    body = text_body(mail)
    assert "The passport expires before 1 September 2031." in body
    assert "How to upload it again" in body
    assert "護照" in body
    assert "officer.lam" not in body


async def test_a_claim_lost_before_the_point_of_no_return_delivers_nothing(
    notifier: Notifier, sink: Sink
) -> None:
    number, email = student()
    await notifier.consume(invitation(number, email))
    [claimed] = await notifier.worker._claim(1)
    # Another worker took the claim over (its lease ran out) before this one committed.
    await notifier.db[NOTIFICATIONS].update_one(
        {"_id": claimed["_id"]}, {"$set": {"claim_id": "someone-else"}}
    )
    await notifier.worker._deliver(claimed)
    await asyncio.sleep(0.5)
    assert sink.mails_to(email) == []
    [doc] = await notifier.notifications(number)
    assert doc["status"] == "sending"
    assert doc["committing"] is False


async def test_due_messages_are_claimed_together_as_many_as_there_are_places(
    notifier: Notifier, sink: Sink
) -> None:
    students = [student() for _ in range(6)]
    for number, email in students:
        await notifier.consume(invitation(number, email))
    claimed = await notifier.worker._claim(4)
    assert len({doc["_id"] for doc in claimed}) == 4
    assert {doc["status"] for doc in claimed} == {"sending"}
    assert len({doc["claim_id"] for doc in claimed}) == 1  # one claim, one request
    rest = await notifier.worker._claim(4)
    assert len(rest) == 2
    assert not {doc["_id"] for doc in rest} & {doc["_id"] for doc in claimed}
    assert await notifier.worker._claim(4) == []
    # Each claimed message is delivered once.
    for doc in claimed + rest:
        await notifier.worker._deliver(doc)
    for _number, email in students:
        await wait_for_mails(sink.maildir, lambda m, email=email: email in envelope_recipients(m))
        assert len(sink.mails_to(email)) == 1


async def test_mail_queued_up_is_claimed_a_round_ahead_and_sent_once_each(
    notifier: Notifier, sink: Sink
) -> None:
    """With more mail due than places, each claim takes a round of messages ahead
    (not one per place freed), never more than ``concurrency`` are sent at once,
    and every message claimed is sent, once."""
    worker = notifier.worker
    assert worker.concurrency == 4
    students = [student() for _ in range(14)]
    for number, email in students:
        await notifier.consume(invitation(number, email))
    claims: list[int] = []
    in_flight = peak = 0
    claim, deliver = worker._claim, worker._deliver

    async def counted_claim(limit: int) -> list[dict[str, Any]]:
        docs = await claim(limit)
        claims.append(len(docs))
        return docs

    async def counted_deliver(doc: dict[str, Any]) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await deliver(doc)
        finally:
            in_flight -= 1

    worker._claim = counted_claim  # type: ignore[method-assign]
    worker._deliver = counted_deliver  # type: ignore[method-assign]
    assert await worker.deliver_due() == 14
    # Eight, then (once those have started) the places free and four more: [8, 4, 2],
    # [8, 5, 1], [8, 6] as deliveries end. A claim for each place freed made it
    # [4, 1, 1, ..., 1]: 11 claims.
    assert claims[0] == 8
    assert sum(claims) == 14
    assert len(claims) <= 3
    assert peak == 4
    for _number, email in students:
        await wait_for_mails(sink.maildir, lambda m, email=email: email in envelope_recipients(m))
        assert len(sink.mails_to(email)) == 1
    assert await notifier.db[NOTIFICATIONS].count_documents({"status": "sent"}) == 14


def hold_answers(worker: DeliveryWorker) -> asyncio.Event:
    """Hold every delivery of ``worker`` before it reaches the mail server; set the
    event returned to let them all go at the same moment."""
    answer = asyncio.Event()
    send = worker.send

    async def held_send(message: Any, sender: str, recipients: list[str], commit: Any) -> None:
        await answer.wait()
        await send(message, sender, recipients, commit)

    worker.send = held_send
    return answer


async def _recorded_sends(notifier: Notifier) -> dict[str, Envelope]:
    """NotificationSent in the outbox, by notification id."""
    rows = await notifier.db[OUTBOX].find({"event_type": "NotificationSent"}).to_list()
    envelopes = [Envelope.from_bytes(bytes(row["value"])) for row in rows]
    return {str(e.payload["notification_id"]): e for e in envelopes}


async def test_deliveries_finishing_together_are_recorded_in_one_transaction(
    notifier: Notifier, sink: Sink
) -> None:
    """Eight deliveries whose mail server answers at the same moment: the first
    is recorded on its own, those that finish meanwhile together (eight
    transactions before), each with its own NotificationSent caused by its own
    event."""
    worker = notifier.worker
    students = [student() for _ in range(8)]
    for number, email in students:
        await notifier.consume(invitation(number, email))
    docs = await worker._claim(8)
    assert len(docs) == 8
    answer = hold_answers(worker)
    transactions: list[int] = []
    run, run_together = notifier.uow.run, notifier.uow.run_together

    async def counted_run(work: Any, **kwargs: Any) -> Any:
        transactions.append(1)
        return await run(work, **kwargs)

    async def counted_together(steps: Any) -> Any:
        transactions.append(len(steps))
        return await run_together(steps)

    notifier.uow.run = counted_run  # type: ignore[method-assign]
    notifier.uow.run_together = counted_together  # type: ignore[method-assign]
    deliveries = [asyncio.create_task(worker._deliver(doc)) for doc in docs]
    await asyncio.sleep(0.1)
    answer.set()
    await asyncio.gather(*deliveries)
    assert sum(transactions) == 8
    assert len(transactions) < 8
    assert max(transactions) > 1
    sent = (
        await notifier.db[NOTIFICATIONS].find({"_id": {"$in": [d["_id"] for d in docs]}}).to_list()
    )
    assert {d["status"] for d in sent} == {"sent"}
    assert {d["attempts"] for d in sent} == {1}
    recorded = await _recorded_sends(notifier)
    assert set(recorded) == {d["_id"] for d in docs}
    for doc in docs:
        assert recorded[doc["_id"]].causation_id == str(doc["cause_event_id"])
    for _number, email in students:
        await wait_for_mails(sink.maildir, lambda m, email=email: email in envelope_recipients(m))
        assert len(sink.mails_to(email)) == 1


async def test_deliveries_recorded_one_by_one_when_recording_them_together_fails(
    notifier: Notifier, sink: Sink
) -> None:
    worker = notifier.worker
    students = [student() for _ in range(6)]
    for number, email in students:
        await notifier.consume(invitation(number, email))
    docs = await worker._claim(6)
    answer = hold_answers(worker)
    tried_together: list[int] = []

    async def failing_together(steps: Any) -> Any:
        tried_together.append(len(steps))
        raise RuntimeError("the shared transaction failed")

    notifier.uow.run_together = failing_together  # type: ignore[method-assign]
    deliveries = [asyncio.create_task(worker._deliver(doc)) for doc in docs]
    await asyncio.sleep(0.1)
    answer.set()
    await asyncio.gather(*deliveries)
    sent = (
        await notifier.db[NOTIFICATIONS].find({"_id": {"$in": [d["_id"] for d in docs]}}).to_list()
    )
    assert tried_together  # some were recorded together first
    assert {(d["status"], d["confirmed"]) for d in sent} == {("sent", True)}
    assert set(await _recorded_sends(notifier)) == {d["_id"] for d in docs}


async def test_a_stopping_worker_sends_what_it_claimed_and_claims_no_more(
    notifier: Notifier, sink: Sink
) -> None:
    worker = notifier.worker
    students = [student() for _ in range(10)]
    for number, email in students:
        await notifier.consume(invitation(number, email))
    claim = worker._claim

    async def claim_then_stop(limit: int) -> list[dict[str, Any]]:
        docs = await claim(limit)
        await worker.stop()
        return docs

    worker._claim = claim_then_stop  # type: ignore[method-assign]
    assert await worker.deliver_due() == 8
    sent = await notifier.db[NOTIFICATIONS].find({"status": "sent"}).to_list()
    assert len(sent) == 8
    assert await notifier.db[NOTIFICATIONS].count_documents({"status": "pending"}) == 2


async def test_dead_claims_are_sought_once_per_poll_interval_and_due_mail_always(
    notifier: Notifier, sink: Sink
) -> None:
    notifier.worker.poll_seconds = 60
    number, email = student()
    await notifier.consume(invitation(number, email))
    [claimed] = await notifier.worker._claim(1)

    async def owner_dies() -> None:  # before the point of no return; its lease runs out
        await notifier.db[NOTIFICATIONS].update_one(
            {"_id": claimed["_id"]},
            {"$set": {"lease_until": datetime.now(UTC) - timedelta(seconds=1)}},
        )

    await owner_dies()
    [again] = await notifier.worker._claim(1)
    assert again["_id"] == claimed["_id"]
    claimed = again
    await owner_dies()
    assert await notifier.worker._claim(1) == []  # looked for a moment ago
    other, other_email = student()
    await notifier.consume(invitation(other, other_email))
    [due] = await notifier.worker._claim(1)  # due mail is claimed all the same
    assert due["student_no"] == other
    notifier.worker._dead_claims_sought_at -= 60  # the interval has passed
    [found] = await notifier.worker._claim(1)
    assert found["_id"] == claimed["_id"]
    await notifier.worker._deliver(found)
    await notifier.worker._deliver(due)
    for address in (email, other_email):
        await wait_for_mails(sink.maildir, lambda m, a=address: a in envelope_recipients(m))
        assert len(sink.mails_to(address)) == 1


async def test_a_claim_that_died_after_the_point_of_no_return_is_not_sent_again(
    notifier: Notifier, sink: Sink
) -> None:
    number, email = student()
    await notifier.consume(invitation(number, email))
    [claimed] = await notifier.worker._claim(1)
    # As if the process died right after the commit write: committing, lease run out.
    await notifier.db[NOTIFICATIONS].update_one(
        {"_id": claimed["_id"]},
        {"$set": {"committing": True, "lease_until": datetime.now(UTC) - timedelta(seconds=1)}},
    )
    await notifier.drain()
    assert sink.mails_to(email) == []
    [doc] = await notifier.notifications(number)
    assert doc["status"] == "sent"
    assert doc["confirmed"] is False


def opened_owing_a_passport(number: str, year: int) -> RegistrationStatusChanged:
    """The registration opened on 1 July of ``year`` with the passport owed."""
    return RegistrationStatusChanged(
        student_no=number,
        intake_year=year,
        to_status=RegistrationStatus.IN_PROGRESS,
        reason="opened",
        outstanding=[
            OutstandingItem(
                item="passport",
                label="Passport",
                compulsory=True,
                state=OutstandingState.MISSING,
            )
        ],
        changed_at=datetime(year, 7, 1, tzinfo=UTC),
    )


async def test_deadline_reminders_once_per_student_per_reminder_day(
    notifier: Notifier, sink: Sink
) -> None:
    owing, owing_email = student()
    done, done_email = student()
    year = 2040 + uuid.uuid4().int % 50
    await notifier.consume(scheduled(year))
    for number, email in ((owing, owing_email), (done, done_email)):
        await notifier.consume(admitted(number, email))
        await notifier.consume(opened_owing_a_passport(number, year))
    await notifier.consume(
        RegistrationStatusChanged(
            student_no=done,
            intake_year=year,
            from_status=RegistrationStatus.IN_PROGRESS,
            to_status=RegistrationStatus.COMPLETED,
            reason="all_verified",
            outstanding=[],
            changed_at=datetime(year, 7, 2, tzinfo=UTC),
        )
    )
    clock = {"now": datetime(year, 8, 7, 2, tzinfo=UTC)}
    reminders = ReminderWorker(
        notifier.uow, HOUSE, poll_seconds=1, days_before=(7, 3, 1), clock=lambda: clock["now"]
    )
    assert await reminders.remind_due() == 1
    assert await reminders.remind_due() == 0  # same day: nothing more
    clock["now"] = datetime(year, 8, 11, 2, tzinfo=UTC)
    assert await reminders.remind_due() == 1
    await notifier.drain()
    await asyncio.sleep(0.3)
    mails = sink.mails_to(owing_email)
    assert len(mails) == 2
    assert f"14/08/{year} 17:00 (HKT)" in text_body(mails[0])
    assert "Passport" in text_body(mails[0])
    assert sink.mails_to(done_email) == []


async def test_an_item_handed_in_is_one_write_and_reminders_follow_what_is_owed(
    notifier: Notifier, sink: Sink
) -> None:
    number, email = student()
    year = 2040 + uuid.uuid4().int % 50
    await notifier.consume(scheduled(year))
    await notifier.consume(admitted(number, email))
    await notifier.consume(opened_owing_a_passport(number, year))

    def uploaded(at: datetime) -> DocumentUploaded:
        return DocumentUploaded(
            document_id=uuid.uuid4(),
            student_no=number,
            doc_type=DocumentType.PASSPORT,
            version=1,
            content_type="application/pdf",
            size_bytes=400,
            sha256="0" * 64,
            uploaded_at=at,
        )

    reads = await queries_on(notifier.db, PROGRESS)
    assert await notifier.consume(uploaded(datetime(year, 7, 3, tzinfo=UTC))) is Outcome.HANDLED
    assert await queries_on(notifier.db, PROGRESS) == reads  # written, not read
    progress = await notifier.db[PROGRESS].find_one({"_id": number})
    assert progress is not None
    assert progress["items"]["passport"]["state"] == "uploaded"
    assert progress["items"]["passport"]["label"] == "Passport"
    # Nothing is owed: the reminder day passes without a reminder.
    clock = {"now": datetime(year, 8, 7, 2, tzinfo=UTC)}
    reminders = ReminderWorker(
        notifier.uow, HOUSE, poll_seconds=1, days_before=(7, 3, 1), clock=lambda: clock["now"]
    )
    assert await reminders.remind_due() == 0
    # Rejected, the passport is owed again; an upload observed before the
    # rejection, arriving late, changes nothing.
    await notifier.consume(
        DocumentRejected(
            document_id=uuid.uuid4(),
            student_no=number,
            doc_type=DocumentType.PASSPORT,
            version=1,
            reason="The photo page is cut off.",
            rejected_by="officer.lam",
            rejected_at=datetime(year, 7, 5, tzinfo=UTC),
        )
    )
    assert await notifier.consume(uploaded(datetime(year, 7, 4, tzinfo=UTC))) is Outcome.HANDLED
    progress = await notifier.db[PROGRESS].find_one({"_id": number})
    assert progress is not None
    assert progress["items"]["passport"]["state"] == "rejected"
    clock["now"] = datetime(year, 8, 11, 2, tzinfo=UTC)
    assert await reminders.remind_due() == 1
    reminder = [n for n in await notifier.notifications(number) if "reminder" in n["template"]]
    assert len(reminder) == 1


CONCURRENCY_UNDER_KILL = 4


async def test_the_service_killed_mid_batch_loses_nothing_and_doubles_nothing(
    infra: Endpoints, sink: Sink, stack_factory: Any
) -> None:
    """A real notifier process, SIGKILLed while it works through a batch, restarted."""
    from notifier.domain.notification import new_notification, rendered
    from notifier.domain.samples import sample_context
    from notifier.domain.templates import render

    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    db = f"notifier_k_{uuid.uuid4().hex[:10]}"
    await ensure_indexes(mongo[db], {**plumbing_indexes(), **INDEXES})
    tag = uuid.uuid4().hex[:8]
    count = 400
    now = datetime.now(UTC)
    docs = []
    for i in range(count):
        doc = new_notification(
            template="card_ready",
            student_no=f"2{i:07d}",
            cause_event_id=uuid.uuid4(),
            facts={},
            given_addresses={},
            at=now,
        )
        message = render("card_ready", sample_context("card_ready"))
        doc.update(rendered(doc, message, [f"k{i}.{tag}@example.com"], now))
        docs.append(doc)
    await mongo[db][NOTIFICATIONS].insert_many(docs)

    def mine(message: Any) -> bool:
        return any(r.endswith(f".{tag}@example.com") for r in envelope_recipients(message))

    env = {
        "MONGODB_DATABASE": db,
        "KAFKA_GROUP_ID": f"notifier-kill-{tag}",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(sink.port),
        "DELIVERY_LEASE_SECONDS": "3",
        "DELIVERY_POLL_SECONDS": "0.2",
        # Four at once (eight claimed): at the default the whole batch went out on
        # an idle machine before the process had been seen ready and killed.
        "DELIVERY_CONCURRENCY": str(CONCURRENCY_UNDER_KILL),
        "OUTBOX_RELAY_ENABLED": "false",
        # Only delivery is under test: reading every topic from the beginning in a
        # fresh group would compete with it for the database.
        "CONSUMER_ENABLED": "false",
    }
    stack = stack_factory(services=["notifier"], extra_env={"notifier": env}, start=False)
    try:
        baseline = len(mail_files(sink.maildir))
        await asyncio.to_thread(stack.start)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(mail_files(sink.maildir)) - baseline < 10:  # cheap: names only
            assert loop.time() < deadline, "the notifier delivered nothing"
            await asyncio.sleep(0.01)
        stack.kill_service("notifier")
        before = len([m for m in read_mailbox(sink.maildir) if mine(m)])
        assert before < count, "the batch finished before the kill; nothing was tested"
        await asyncio.to_thread(stack.start_service, "notifier")
        deadline = loop.time() + 180
        while await mongo[db][NOTIFICATIONS].count_documents({"status": {"$ne": "sent"}}):
            assert loop.time() < deadline, "the restarted notifier did not finish the batch"
            await asyncio.sleep(1)
        await asyncio.sleep(5)  # longer than the lease: a duplicate would have shown by now
    finally:
        await asyncio.to_thread(stack.stop)
    ids = [str(m["X-Notification-Id"]) for m in read_mailbox(sink.maildir) if mine(m)]
    assert len(ids) == len(set(ids)), "a message was delivered twice"
    # The one gap the design leaves: killed between a message's point of no return
    # and the server's answer, it is settled sent *unconfirmed* (for staff to
    # resend), never sent again. Only messages under way at the kill can be there.
    unconfirmed = {
        d["_id"] async for d in mongo[db][NOTIFICATIONS].find({"confirmed": False}, {"_id": 1})
    }
    missing = {d["_id"] for d in docs} - set(ids)
    assert missing <= unconfirmed, f"lost without a flag: {sorted(missing - unconfirmed)}"
    assert len(unconfirmed) <= CONCURRENCY_UNDER_KILL
    assert set(ids) <= {d["_id"] for d in docs}
    await mongo.close()


async def test_inbox_preview_and_resend_over_http(notifier: Notifier, sink: Sink) -> None:
    from types import SimpleNamespace

    import httpx
    from fastapi import FastAPI
    from notifier.api.routes import router
    from opr_shared.auth import (
        KeySet,
        Role,
        TokenVerifier,
        generate_private_key,
        public_jwk,
        sign_token,
    )

    key = generate_private_key()

    async def jwks() -> dict[str, Any]:
        return {"keys": [public_jwk(key, "k1")]}

    app = FastAPI()
    app.include_router(router, prefix="/api/notifier")
    app.state.runtime = SimpleNamespace(db=notifier.db)
    app.state.token_verifier = TokenVerifier(KeySet(jwks))

    def token(role: Role, student_no: str | None = None) -> dict[str, str]:
        signed = sign_token(
            key,
            "k1",
            subject=student_no or "staff",
            role=role,
            ttl_seconds=600,
            student_no=student_no,
        )
        return {"Authorization": f"Bearer {signed}"}

    number, email = student()
    other, other_email = student()
    await notifier.consume(invitation(number, email))
    await notifier.consume(invitation(other, other_email))
    notifier.worker.max_attempts = 1
    refuse_mail(sink.maildir)
    try:
        await notifier.worker.deliver_due()
    finally:
        accept_mail(sink.maildir)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        me = token(Role.STUDENT, number)
        inbox = (await client.get("/api/notifier/me/notifications", headers=me)).json()
        assert [i["template"] for i in inbox] == ["invitation"]
        assert inbox[0]["read"] is False
        assert inbox[0]["emailed"] is False
        item = inbox[0]["id"]
        opened = await client.get(f"/api/notifier/me/notifications/{item}", headers=me)
        assert "陳大文" in opened.json()["text"]
        read = await client.post(f"/api/notifier/me/notifications/{item}/read", headers=me)
        assert read.json()["read"] is True
        unread = await client.get("/api/notifier/me/notifications?unread=true", headers=me)
        assert unread.json() == []
        # Someone else's message is not found, and staff lists are not for students.
        stranger = token(Role.STUDENT, other)
        assert (
            await client.get(f"/api/notifier/me/notifications/{item}", headers=stranger)
        ).status_code == 404
        assert (await client.get("/api/notifier/notifications", headers=me)).status_code == 403
        assert (await client.get("/api/notifier/me/notifications")).status_code == 401

        officer = token(Role.REGISTRY_OFFICER)
        failed = await client.get(
            f"/api/notifier/notifications?status=failed&student_no={number}", headers=officer
        )
        assert [f["id"] for f in failed.json()] == [item]
        [other_id] = [n["_id"] for n in await notifier.notifications(other)]
        card_office = token(Role.CARD_OFFICE)
        refused = await client.post(
            f"/api/notifier/notifications/{item}/resend", headers=card_office
        )
        assert refused.status_code == 403
        resent = await client.post(f"/api/notifier/notifications/{item}/resend", headers=officer)
        assert resent.status_code == 202
        assert resent.json()["status"] == "pending"
        again = await client.post(f"/api/notifier/notifications/{item}/resend", headers=officer)
        assert again.status_code == 409
        notifier.worker.max_attempts = 8
        await notifier.drain()
        assert len(sink.mails_to(email)) == 1
        detail = await client.get(f"/api/notifier/notifications/{item}", headers=officer)
        assert [e["event"] for e in detail.json()["log"]] == [
            "queued",
            "attempt_failed",
            "resend",
            "sent",
        ]

        # The other student's invitation, resent, dies past its point of no return:
        # staff find it among the unconfirmed ones (and only it).
        assert (
            await client.post(f"/api/notifier/notifications/{other_id}/resend", headers=officer)
        ).status_code == 202
        [claimed] = await notifier.worker._claim(1)
        assert claimed["_id"] == other_id
        await notifier.db[NOTIFICATIONS].update_one(
            {"_id": other_id},
            {"$set": {"committing": True, "lease_until": datetime.now(UTC) - timedelta(seconds=1)}},
        )
        await notifier.drain()
        unconfirmed = await client.get(
            "/api/notifier/notifications?status=sent&confirmed=false", headers=officer
        )
        assert [u["id"] for u in unconfirmed.json()] == [other_id]
        confirmed = await client.get(
            "/api/notifier/notifications?status=sent&confirmed=true", headers=officer
        )
        assert [c["id"] for c in confirmed.json()] == [item]

        preview = await client.get(
            "/api/notifier/templates/registration_completed/preview", headers=officer
        )
        assert preview.status_code == 200
        assert "Acknowledgement of Program Registration" in preview.json()["subject"]
        assert "家長" in preview.json()["html"]
        html = await client.get(
            "/api/notifier/templates/card_ready/preview?format=html", headers=officer
        )
        assert html.headers["content-type"].startswith("text/html")
        missing = await client.get("/api/notifier/templates/nope/preview", headers=officer)
        assert missing.status_code == 404
        assert (await client.get("/api/notifier/templates/invitation/preview")).status_code == 401
