"""The intake simulation: admitted students and staff, through the public API only.

One run:

1. the registry imports the cohort (roster chunks, with invitations);
2. each student, once the invitation e-mail is in the mail sink, activates the
   account (which signs them in, as in the portal), saves a draft, submits the
   form, uploads the identity card and the card photo (at most ``users``
   students act at once);
3. staff pollers read the verification queues and verify/approve every item of
   the cohort;
4. the run waits until every student has a card with a collection slot and all
   five milestone e-mails in the mail sink, then each student comes back, signs
   in with the university e-mail and password, and reads their card.

Timestamps for the end-to-end latencies come from the events themselves (read
from every service's topic) and from the mail sink's ``X-Received-At`` header.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import ssl
import string
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from opr_shared.events.envelope import SERVICES
from opr_shared.localinfra import Endpoints
from opr_shared.smtpsink import SUFFIX as MAIL_SUFFIX
from opr_shared.testing.journey import bearer, form_answers, roster_row, staff_token
from opr_shared.testing.samples import blank_pdf, face_photo

# invitation, account_activated, form_received, registration_completed, card_ready
EXPECTED_MAILS = 5
IMPORT_CHUNK = 500
LETTERS = string.ascii_letters
# What the roster tells about a student that a password must not contain.
PERSONAL = ("student_no", "jupas_app_no", "surname", "given_names", "personal_email")
HK = ZoneInfo("Asia/Hong_Kong")
TOKEN = re.compile(r"activate\?token=([A-Za-z0-9_\-]+)")
FORM: dict[str, Any] = form_answers()
# Events whose timestamps the report needs (others are only counted).
KEPT_EVENTS = frozenset(
    {
        "StudentAdmitted",
        "InvitationIssued",
        "AccountActivated",
        "FormSubmitted",
        "DocumentVerified",
        "PhotoApproved",
        "RegistrationCompleted",
        "CardIssued",
        "CardReadyForCollection",
        "NotificationSent",
    }
)


@dataclass
class Target:
    """Where the system under test answers, and its processes (for memory)."""

    gateway_url: str
    endpoints: Endpoints
    pids: dict[str, int]
    # The addresses of each service's processes (their /metrics), when known.
    service_urls: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Config:
    n: int = 200
    users: int = 100
    staff: int = 4
    timeout: float = 900.0
    # Mean pause (s) a student takes before each step: reading the e-mail, typing
    # the form, finding the files. 0 = none: every student acts as fast as the
    # system answers, which is an overload test rather than a crowd of people.
    think: float = 0.0
    # The card photo every student uploads: a 4:5 crop of a 12-megapixel phone
    # camera's picture, as the portal sends what the student picked, unresized.
    photo_size: tuple[int, int] = (2419, 3024)
    label: str = field(default_factory=lambda: uuid.uuid4().hex[:6])


# --- HTTP with latency records --------------------------------------------------------


class Signed:
    """The bearer headers of one signed-in user, renewed when the API answers 401.

    Access tokens last 15 minutes; the portal then asks its user to sign in again,
    and a student who pauses between steps (``--think``) or the staff of a long run
    outlive theirs. ``sign_in`` answers a fresh access token through the client given.
    """

    def __init__(self, token: str, sign_in: Callable[[httpx.AsyncClient], Awaitable[str]]) -> None:
        self.headers = bearer(token)
        self._sign_in = sign_in

    async def renew(self, client: httpx.AsyncClient) -> None:
        self.headers = bearer(await self._sign_in(client))


class Http:
    """Timed HTTP calls: every call is recorded under its endpoint's name.

    Staff share one pooled client; each student gets a client of its own (see
    :meth:`own_client`), as each browser holds its own connections. One pool for
    a thousand students would cost the load generator more CPU than the requests
    (the pool looks over every connection for each request) on the machine it
    shares with the system.
    """

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.errors: dict[str, int] = defaultdict(int)
        self.in_flight = 0
        self.peak_in_flight = 0
        # One TLS context for every student's client: httpx would otherwise load
        # the CA bundle for each (about 1 MB apiece), though the gateway is plain HTTP.
        self._tls = ssl.create_default_context()

    async def call(
        self,
        method: str,
        name: str,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        auth: Signed | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request; with ``auth`` its headers are sent, and on 401 the user signs
        in again and the request is repeated once."""
        response = await self._timed(method, name, url, client, auth, kwargs)
        if response.status_code == 401 and auth is not None:
            await auth.renew(client or self.client)
            response = await self._timed(method, name, url, client, auth, kwargs)
        return response

    async def _timed(
        self,
        method: str,
        name: str,
        url: str,
        client: httpx.AsyncClient | None,
        auth: Signed | None,
        kwargs: dict[str, Any],
    ) -> httpx.Response:
        if auth is not None:
            kwargs = {**kwargs, "headers": auth.headers}
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        began = time.perf_counter()
        try:
            response = await (client or self.client).request(method, url, **kwargs)
        except httpx.HTTPError:
            self.errors[name] += 1
            raise
        finally:
            self.in_flight -= 1
        self.samples[name].append(time.perf_counter() - began)
        self.statuses[name][response.status_code] += 1
        return response

    def own_client(self) -> httpx.AsyncClient:
        """A client with two connections of its own, to the same gateway."""
        return httpx.AsyncClient(
            base_url=self.client.base_url,
            timeout=self.client.timeout,
            verify=self._tls,
            limits=httpx.Limits(
                max_connections=2,
                max_keepalive_connections=2,
                keepalive_expiry=30,  # the gateway keeps idle connections 75 s
            ),
        )


class JourneyFailed(RuntimeError):
    pass


def expect(response: httpx.Response, *codes: int) -> httpx.Response:
    if response.status_code not in codes:
        raise JourneyFailed(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:300]}"
        )
    return response


async def retry_while(
    attempt: Callable[[], Awaitable[httpx.Response]],
    waiting: Callable[[httpx.Response], bool],
    timeout: float,
) -> httpx.Response:
    """Repeat ``attempt`` while its answer says an event has not arrived yet, or the
    service is busy: after the pause its ``Retry-After`` asks for, as its message
    asks, or else after a pause growing from 0.2 to 2 s."""
    deadline = time.monotonic() + timeout
    pause = 0.2
    while True:
        response = await attempt()
        retry = response.status_code == 503 or waiting(response)
        if not retry or time.monotonic() > deadline:
            return response
        asked = response.headers.get("retry-after", "")
        await asyncio.sleep(float(asked) if asked.isdigit() else pause)
        pause = min(pause * 1.5, 2.0)


# --- test files -----------------------------------------------------------------------


# --- what the system tells us: the mail sink and the topics ----------------------------


HEADERS = BytesHeaderParser(policy=policy.compat32)


def plain_text(raw: bytes) -> str:
    """The plain-text body of a message, decoded."""
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("plain",))
    return str(body.get_content()) if body is not None else ""


@dataclass
class Mail:
    received_at: datetime
    notification_id: str | None
    subject: str


class MailWatcher:
    """Reads new ``.eml`` files for the cohort's addresses as they appear."""

    def __init__(self, maildir: Path, addresses: dict[str, str]) -> None:
        self.maildir = maildir
        self.student_of = addresses  # address -> student number
        self.seen: set[str] = set()
        self.seen.update(self._new_names())
        self.mails: dict[str, list[Mail]] = defaultdict(list)
        self.invitations: dict[str, asyncio.Future[str]] = {}
        self.changed = asyncio.Event()
        self.touched: set[str] = set()  # students with mail since the last take_touched()
        self._grown: list[str] = []  # filled by scan() on its thread, emptied by scan_once()
        self._tokened: set[str] = set()  # students whose activation token was found

    def _new_names(self) -> list[str]:
        """Names of the messages delivered since the last look, oldest first.

        Only names are compared, twice a second, with every file in the folder:
        making a path of each and sorting them all cost a third of a second at
        40,000 messages, most of a core by the end of an 8,000-student intake.
        The sink's temporary files (".tmp-…") are skipped, or a message caught
        before its rename would be counted twice.
        """
        try:
            names = os.listdir(self.maildir)
        except FileNotFoundError:
            return []
        fresh = [
            name
            for name in names
            if name.endswith(MAIL_SUFFIX) and not name.startswith(".") and name not in self.seen
        ]
        fresh.sort()  # the sink's names sort by arrival
        return fresh

    def invitation(self, student_no: str) -> asyncio.Future[str]:
        if student_no not in self.invitations:
            self.invitations[student_no] = asyncio.get_running_loop().create_future()
        return self.invitations[student_no]

    def scan(self) -> list[tuple[str, str]]:
        """Read the new files (on a worker thread); return the activation tokens found,
        for :meth:`run` to hand over on the event loop's thread.

        Only the headers are parsed, and the text of a message only until the
        student's activation token is found: parsing every message whole was a
        quarter of the load generator's CPU in an 8,000-student intake."""
        tokens: list[tuple[str, str]] = []
        for name in self._new_names():
            self.seen.add(name)
            path = self.maildir / name
            try:
                raw = path.read_bytes()
            except OSError:
                continue
            headers = HEADERS.parsebytes(raw)
            recipients = [a.strip() for a in str(headers.get("X-Envelope-To", "")).split(",")]
            students = [self.student_of[a] for a in recipients if a in self.student_of]
            if not students:
                continue
            received = datetime.fromisoformat(str(headers["X-Received-At"]).strip())
            subject = str(make_header(decode_header(str(headers.get("Subject", "")))))
            mail = Mail(
                received_at=received,
                notification_id=str(headers.get("X-Notification-Id") or "").strip() or None,
                subject=" ".join(subject.split()),
            )
            text: str | None = None
            for student_no in students:
                self.mails[student_no].append(mail)
                self._grown.append(student_no)
                if student_no in self._tokened:
                    continue
                if text is None:
                    text = plain_text(raw)
                token = TOKEN.search(text)
                if token:
                    tokens.append((student_no, token.group(1)))
                    self._tokened.add(student_no)
        return tokens

    async def scan_once(self) -> None:
        for student_no, token in await asyncio.to_thread(self.scan):
            future = self.invitation(student_no)
            if not future.done():
                future.set_result(token)
        grown, self._grown = self._grown, []
        if grown:
            self.touched.update(grown)
            self.changed.set()

    def take_touched(self) -> set[str]:
        """The students whose mail grew since the last call."""
        touched, self.touched = self.touched, set()
        return touched

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.scan_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
        await self.scan_once()


@dataclass
class Seen:
    event_id: str
    event_type: str
    occurred_at: datetime
    payload: dict[str, Any]


class TopicWatcher:
    """Every service's topic from the offsets at the start, kept for the cohort.

    ``notifier.events`` is read once the intake is over (:meth:`read_deferred`):
    nothing in the intake waits for it, no service consumes it, and a reader
    following it live made the local broker list the topic's ever-growing
    folders on every fetch (its storage keeps a topic no consumer group reads).
    """

    DEFERRED = frozenset({"notifier.events"})

    def __init__(self, bootstrap: str, cohort: set[str]) -> None:
        self.bootstrap = bootstrap
        self.cohort = cohort
        self.deferred: list[TopicPartition] = []
        self.events: dict[str, list[Seen]] = defaultdict(list)
        self._kinds: dict[str, set[str]] = defaultdict(set)
        self.touched: set[str] = set()  # students with events since the last take_touched()
        self.by_id: dict[str, Seen] = {}
        self.counts: dict[str, int] = defaultdict(int)
        self.relay_lag: dict[str, list[float]] = defaultdict(list)
        self.total = 0
        self.changed = asyncio.Event()
        self.consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=200,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        await consumer.start()
        topics = [f"{name}.events" for name in SERVICES]
        partitions: list[TopicPartition] = []
        for topic in topics:
            parts: set[int] | None = None
            for _ in range(50):
                await consumer.topics()
                parts = consumer.partitions_for_topic(topic)
                if parts:
                    break
                await asyncio.sleep(0.2)
            partitions += [TopicPartition(topic, p) for p in sorted(parts or ())]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp, offset in ends.items():
            consumer.seek(tp, offset)
        self.deferred = [tp for tp in partitions if tp.topic in self.DEFERRED]
        consumer.pause(*self.deferred)
        self.consumer = consumer

    def read_deferred(self) -> None:
        """Start reading the deferred topics, from where they stood at the start."""
        assert self.consumer is not None
        self.consumer.resume(*self.deferred)

    def _take(self, topic: str, timestamp_ms: int, key: bytes | None, value: bytes | None) -> None:
        if key is None or value is None:
            return
        student_no = key.decode(errors="replace")
        if student_no not in self.cohort:
            return
        envelope = json.loads(value)
        kind = str(envelope["event_type"])
        occurred_at = datetime.fromisoformat(str(envelope["occurred_at"]))
        # The record's timestamp is when the relay handed it to the producer.
        self.relay_lag[topic].append(timestamp_ms / 1000 - occurred_at.timestamp())
        self.total += 1
        self.counts[kind] += 1
        if kind not in KEPT_EVENTS:
            return
        payload = envelope.get("payload") or {}
        kept = {
            k: payload[k] for k in ("notification_id", "cause_event_id", "template") if k in payload
        }
        seen = Seen(
            event_id=str(envelope["event_id"]),
            event_type=kind,
            occurred_at=occurred_at,
            payload=kept,
        )
        self.events[student_no].append(seen)
        self._kinds[student_no].add(kind)
        self.touched.add(student_no)
        self.by_id[seen.event_id] = seen

    async def run(self, stop: asyncio.Event) -> None:
        assert self.consumer is not None
        try:
            while True:
                batch = await self.consumer.getmany(timeout_ms=300)
                for records in batch.values():
                    for record in records:
                        self._take(record.topic, record.timestamp, record.key, record.value)
                if batch:
                    self.changed.set()
                elif stop.is_set():
                    return
        finally:
            await self.consumer.stop()

    def templates(self) -> dict[str, int]:
        """Notifications sent to the cohort, by template."""
        counts: dict[str, int] = defaultdict(int)
        for events in self.events.values():
            for e in events:
                if e.event_type == "NotificationSent":
                    counts[str(e.payload.get("template"))] += 1
        return dict(sorted(counts.items()))

    def kinds(self, student_no: str) -> frozenset[str]:
        """The kinds of the kept events seen for the student."""
        return frozenset(self._kinds.get(student_no, ()))

    def take_touched(self) -> set[str]:
        """The students with kept events read since the last call."""
        touched, self.touched = self.touched, set()
        return touched

    def first(self, student_no: str, kind: str) -> Seen | None:
        return next((e for e in self.events.get(student_no, []) if e.event_type == kind), None)


# --- the cohort -----------------------------------------------------------------------


@dataclass
class Student:
    student_no: str
    row: dict[str, Any]
    password: str
    university_email: str = ""
    started: float = 0.0
    submitted: float = 0.0
    completed: float = 0.0  # card with a slot and every e-mail seen
    finished: float = 0.0
    error: str | None = None


def new_password(row: dict[str, Any]) -> str:
    """A random password the activation accepts: none of the student's particulars
    in it (any part of 4 or more characters, in any case, as identity refuses;
    a random one held the surname about once in 25,000 students)."""
    known = " ".join(str(row.get(k) or "") for k in PERSONAL)
    parts = {p for p in known.casefold().replace("@", " ").replace(".", " ").split() if len(p) >= 4}
    for _ in range(1000):
        password = "Harbour-Lantern-" + "".join(random.choices(LETTERS, k=12))
        if not any(part in password.casefold() for part in parts):
            return password
    raise ValueError(f"no acceptable password for {row.get('student_no')}")


def make_cohort(n: int, label: str) -> list[Student]:
    base = 20_000_000 + (int(label, 16) % 7_000) * 1_000
    numbers = (
        [str(base + i) for i in range(n)]
        if n <= 1_000
        # Drawn without replacement: n distinct numbers (drawn one by one, 8,000 of
        # them held 3 pairs of equals, and the cohort came out 3 short).
        else [f"3{k:07d}" for k in random.sample(range(10**7), n)]
    )
    students = []
    for number in numbers:
        row = roster_row(
            number,
            jupas_app_no=f"{int(number) % 10**8:08d}"[::-1],
            personal_email=f"bench.{label}.{number}@example.com",
        )
        students.append(Student(number, row, password=new_password(row)))
    return students


class Intake:
    def __init__(self, target: Target, config: Config) -> None:
        self.target = target
        self.config = config
        self.students = make_cohort(config.n, config.label)
        self.by_no = {s.student_no: s for s in self.students}
        assert target.endpoints.maildir is not None, "the bench needs the mail sink's folder"
        self.mail = MailWatcher(
            target.endpoints.maildir, {s.row["personal_email"]: s.student_no for s in self.students}
        )
        self.topics = TopicWatcher(target.endpoints.kafka_bootstrap, set(self.by_no))
        self.pdf = blank_pdf()
        self.photo = face_photo(config.photo_size)
        self.staff_done: dict[str, int] = defaultdict(int)
        self.active = 0
        self.peak_active = 0
        self.began = 0.0
        self.http: Http
        self._pauses = random.Random(config.label)  # think times, repeatable per run label

    # -- staff ---------------------------------------------------------------------

    async def schedule(self, headers: dict[str, str]) -> None:
        """A collection day with room for the cohort, keeping whatever is published."""
        current = expect(
            await self.http.call(
                "GET", "GET /card/schedule", "/api/card/schedule", headers=headers
            ),
            200,
        ).json()
        now = datetime.now(UTC)
        free = sum(s["remaining"] for s in current["slots"] if s["starts_at"] > now.isoformat())
        if free >= len(self.students):
            return
        days: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for slot in current["slots"]:
            starts = datetime.fromisoformat(slot["starts_at"]).astimezone(HK)
            ends = datetime.fromisoformat(slot["ends_at"]).astimezone(HK)
            days[starts.date().isoformat()].append(
                {
                    "start": starts.strftime("%H:%M"),
                    "end": ends.strftime("%H:%M"),
                    "capacity": slot["capacity"],
                }
            )
        day = (now + timedelta(days=40)).date()
        while day.isoformat() in days:
            day += timedelta(days=1)
        need = len(self.students)
        windows = []
        for hour in range(9, 17):
            if need <= 0:
                break
            windows.append(
                {"start": f"{hour:02d}:00", "end": f"{hour + 1:02d}:00", "capacity": 10_000}
            )
            need -= 10_000
        days[day.isoformat()] = windows
        body = {
            "venue": current.get("venue") or "Student Card Office, Room 1101",
            "bring": current.get("bring") or ["Hong Kong Identity Card or passport"],
            "days": [{"date": d, "windows": w} for d, w in sorted(days.items())][-60:],
        }
        expect(
            await self.http.call(
                "PUT", "PUT /card/schedule", "/api/card/schedule", json=body, headers=headers
            ),
            200,
        )

    async def import_roster(self, headers: dict[str, str]) -> None:
        rows = [s.row for s in self.students]
        for i in range(0, len(rows), IMPORT_CHUNK):
            answer = expect(
                await self.http.call(
                    "POST",
                    "POST /identity/admissions/import",
                    "/api/identity/admissions/import?invite=true",
                    json=rows[i : i + IMPORT_CHUNK],
                    headers=headers,
                    timeout=600,
                ),
                200,
            ).json()
            if answer["rejected"]:
                raise JourneyFailed(f"roster rows refused: {answer['errors'][:3]}")

    async def reviewer(
        self,
        staff: Signed,
        kind: str,
        act: Callable[[str], Awaitable[None]],
        stop: asyncio.Event,
    ) -> None:
        """Poll the queue; act on every pending item of the cohort (``staff`` at once)."""
        gate = asyncio.Semaphore(self.config.staff)
        handled: set[str] = set()

        async def one(item_id: str) -> None:
            async with gate:
                await act(item_id)
                self.staff_done[kind] += 1

        while not stop.is_set():
            answer = await self.http.call(
                "GET",
                f"GET /documents/queue?kind={kind}",
                "/api/documents/queue",
                params={"kind": kind, "limit": 500},
                auth=staff,
            )
            todo = [
                i["id"]
                for i in (answer.json().get("items", []) if answer.status_code == 200 else [])
                if i["student_no"] in self.by_no and i["id"] not in handled
            ]
            handled.update(todo)
            if todo:
                await asyncio.gather(*(one(i) for i in todo))
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)

    # -- students ------------------------------------------------------------------

    async def journey(self, student: Student, gate: asyncio.Semaphore) -> None:
        token = await asyncio.wait_for(
            self.mail.invitation(student.student_no), self.config.timeout
        )
        async with gate:
            self.active += 1
            self.peak_active = max(self.peak_active, self.active)
            student.started = time.monotonic()
            try:
                async with self.http.own_client() as client:
                    await self._act(client, student, token)
            finally:
                self.active -= 1

    async def _act(self, client: httpx.AsyncClient, student: Student, token: str) -> None:
        def call(method: str, name: str, url: str, **kwargs: Any) -> Awaitable[httpx.Response]:
            return self.http.call(method, name, url, client=client, **kwargs)

        think = self._think
        await think()
        activated = expect(
            await call(
                "POST",
                "POST /identity/accounts/activate",
                "/api/identity/accounts/activate",
                json={"token": token, "password": student.password},
            ),
            200,
        ).json()
        student.university_email = activated["university_email"]
        # Activating signs the student in (the portal goes on to the registration).
        me = Signed(activated["access_token"], self._signer(student))
        timeout = self.config.timeout

        async def get_mine() -> httpx.Response:
            return await call("GET", "GET /registration/me", "/api/registration/me", auth=me)

        await think()
        expect(await retry_while(get_mine, lambda r: r.status_code == 404, timeout), 200)
        await think()
        expect(
            await call(
                "PUT",
                "PUT /registration/me/form",
                "/api/registration/me/form",
                json={"residency": FORM["residency"], "gender": FORM["gender"]},
                auth=me,
            ),
            200,
        )
        await think()
        expect(
            await call(
                "POST",
                "POST /registration/me/submit",
                "/api/registration/me/submit",
                json=FORM,
                auth=me,
            ),
            200,
        )
        student.submitted = time.monotonic()

        async def upload_document() -> httpx.Response:
            return await call(
                "POST",
                "POST /documents/me/documents",
                "/api/documents/me/documents",
                data={"doc_type": "hk_permanent_id_card"},
                files={"file": ("hkid.pdf", self.pdf, "application/pdf")},
                auth=me,
            )

        await think()
        expect(await retry_while(upload_document, lambda r: r.status_code == 409, timeout), 201)

        async def upload_photo() -> httpx.Response:
            return await call(
                "POST",
                "POST /documents/me/photo",
                "/api/documents/me/photo",
                files={"file": ("me.jpg", self.photo, "image/jpeg")},
                auth=me,
            )

        await think()
        expect(await retry_while(upload_photo, lambda r: r.status_code == 409, timeout), 201)

    def _signer(self, student: Student) -> Callable[[httpx.AsyncClient], Awaitable[str]]:
        """Signs ``student`` in with the university e-mail and password, answering
        the access token."""

        async def sign_in(through: httpx.AsyncClient) -> str:
            session = expect(
                await self.http.call(
                    "POST",
                    "POST /identity/sessions",
                    "/api/identity/sessions",
                    client=through,
                    json={"email": student.university_email, "password": student.password},
                ),
                200,
            ).json()
            return str(session["access_token"])

        return sign_in

    def complete(self, student_no: str) -> bool:
        kinds = self.topics.kinds(student_no)
        return (
            "CardIssued" in kinds
            and "CardReadyForCollection" in kinds
            and len(self.mail.mails.get(student_no, [])) >= EXPECTED_MAILS
        )

    async def confirm(self, student: Student) -> None:
        """The student comes back, signs in and sees the issued card with a slot.

        A student who pauses between steps comes back after a pause too: with
        ``--think`` the returns spread out instead of a thousand sign-ins arriving
        at one instant."""
        await self._think()
        async with self.http.own_client() as client:
            sign_in = self._signer(student)
            me = Signed(await sign_in(client), sign_in)
            card = expect(
                await self.http.call("GET", "GET /card/me", "/api/card/me", client=client, auth=me),
                200,
            ).json()
        if card["status"] != "issued" or card["slot"] is None:
            raise JourneyFailed(f"card of {student.student_no}: {card}")
        student.finished = time.monotonic()

    # -- the run -------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        cfg = self.config
        # The shared pool serves the staff (students have clients of their own).
        limits = httpx.Limits(
            max_connections=4 * cfg.staff + 8,
            max_keepalive_connections=4 * cfg.staff + 8,
            keepalive_expiry=30,  # the gateway keeps idle connections 75 s
        )
        stop = asyncio.Event()
        async with httpx.AsyncClient(
            base_url=self.target.gateway_url, timeout=120, limits=limits
        ) as client:
            self.http = Http(client)

            async def registry_officer(through: httpx.AsyncClient) -> str:
                return await staff_token(through, "registry_officer")

            async def card_office(through: httpx.AsyncClient) -> str:
                return await staff_token(through, "card_office")

            registry = Signed(await registry_officer(client), registry_officer)
            office = Signed(await card_office(client), card_office)
            await self.schedule(office.headers)
            await self.topics.start()
            watchers = [
                asyncio.create_task(self.mail.run(stop)),
                asyncio.create_task(self.topics.run(stop)),
            ]

            async def verify(item_id: str) -> None:
                expect(
                    await self.http.call(
                        "POST",
                        "POST /documents/documents/{id}/verify",
                        f"/api/documents/documents/{item_id}/verify",
                        json={"expiry_date": "2035-01-31"},
                        auth=registry,
                    ),
                    200,
                )

            async def approve(item_id: str) -> None:
                expect(
                    await self.http.call(
                        "POST",
                        "POST /documents/photos/{id}/approve",
                        f"/api/documents/photos/{item_id}/approve",
                        auth=office,
                    ),
                    200,
                )

            staff_stop = asyncio.Event()
            reviewers = [
                asyncio.create_task(self.reviewer(registry, "document", verify, staff_stop)),
                asyncio.create_task(self.reviewer(office, "photo", approve, staff_stop)),
            ]
            began = self.began = time.monotonic()
            began_at = datetime.now(UTC)
            gate = asyncio.Semaphore(cfg.users)
            try:
                await self.import_roster(registry.headers)
                imported = time.monotonic()
                journeys = [
                    asyncio.create_task(self._guarded(s, self.journey(s, gate)))
                    for s in self.students
                ]
                tracking = asyncio.create_task(self._until_complete(began + cfg.timeout))
                await asyncio.gather(*journeys)
                acted = time.monotonic()
                await tracking
                # The cohort's work is done: every card issued, every e-mail delivered.
                # The closing check (students reading their card, after a pause with
                # --think) is timed apart, so the pause is not counted as work.
                completed = time.monotonic()
                done = [s for s in self.students if s.error is None and self.complete(s.student_no)]
                await asyncio.gather(
                    *(self._guarded(s, self._gated(gate, self.confirm(s))) for s in done)
                )
                checked = time.monotonic()
                self.topics.read_deferred()
                await self._drain(time.monotonic() + 120)
            finally:
                staff_stop.set()
                await asyncio.gather(*reviewers, return_exceptions=True)
                stop.set()
                await asyncio.gather(*watchers, return_exceptions=True)
        return {
            "began_at": began_at.isoformat(),
            "wall_seconds": completed - began,
            "import_seconds": imported - began,
            "students_acting_seconds": acted - imported,
            "closing_check_seconds": checked - completed,
            "peak_active_users": self.peak_active,
            "peak_http_in_flight": self.http.peak_in_flight,
        }

    async def _think(self) -> None:
        """A student's pause before a step (exponential, mean ``Config.think``)."""
        if self.config.think > 0:
            await asyncio.sleep(self._pauses.expovariate(1 / self.config.think))

    @staticmethod
    async def _gated(gate: asyncio.Semaphore, work: Awaitable[None]) -> None:
        async with gate:
            await work

    async def _guarded(self, student: Student, work: Awaitable[None]) -> None:
        try:
            await work
        except (JourneyFailed, httpx.HTTPError, TimeoutError) as exc:
            student.error = f"{type(exc).__name__}: {exc}"[:500]

    async def _until_complete(self, deadline: float) -> None:
        """Wait until every student without an error is complete.

        Only students with new mail or events since the last look are checked
        again: looking at all of them on every change took most of the load
        generator's CPU with thousands of students waiting."""
        pending = {s.student_no for s in self.students if s.error is None}
        self.mail.take_touched()
        self.topics.take_touched()
        candidates = set(pending)  # the first look checks everyone
        while pending and time.monotonic() < deadline:
            now = time.monotonic()
            for number in candidates & pending:
                if self.complete(number):
                    self.by_no[number].completed = now
                    pending.discard(number)
            pending -= {n for n in pending if self.by_no[n].error is not None}
            if not pending:
                return
            self.mail.changed.clear()
            self.topics.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._either_changed(), 2.0)
            candidates = self.mail.take_touched() | self.topics.take_touched()
        for number in pending:
            student = self.by_no[number]
            if student.error is None:
                kinds = sorted(self.topics.kinds(number))
                mails = len(self.mail.mails.get(number, []))
                student.error = f"not complete in time: events {kinds}, {mails} e-mails"

    def _all_seen(self) -> bool:
        """Every event the report needs has been read (the topics lag the mail sink)."""
        for student in self.students:
            if not student.finished:
                continue
            kinds = self.topics.kinds(student.student_no)
            sent = sum(
                1
                for e in self.topics.events.get(student.student_no, [])
                if e.event_type == "NotificationSent"
            )
            subjects = {m.subject for m in self.mail.mails[student.student_no]}
            if "FormSubmitted" not in kinds or sent < len(subjects):
                return False
        return True

    async def _drain(self, deadline: float) -> None:
        """Keep reading the topics (after the run) until the report has what it needs."""
        while not self._all_seen() and time.monotonic() < deadline:
            self.topics.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.topics.changed.wait(), 2.0)

    async def _either_changed(self) -> None:
        waits = [
            asyncio.create_task(self.mail.changed.wait()),
            asyncio.create_task(self.topics.changed.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
