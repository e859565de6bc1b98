"""MongoDB access: the unit of work that writes a state change, the events it
causes (the outbox) and the consumed event's processed mark in ONE transaction.

A use case is an async function of a :class:`Transaction`. It reads and writes
through ``tx.db`` with ``session=tx.session`` and records events with
``tx.publish(...)``. :meth:`UnitOfWork.run` commits all of it together, retrying
the whole function on transient transaction errors (write conflicts), so the
function must not have side effects outside the transaction.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from bson import Binary
from prometheus_client import Counter, Histogram
from pymongo import ASCENDING, AsyncMongoClient, IndexModel, ReadPreference, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from opr_shared.events.envelope import Envelope, EventPayload
from opr_shared.jsonlog import correlation_id_var

T = TypeVar("T")
Document = dict[str, Any]
DUPLICATE_KEY = 11000  # MongoDB's error code for a unique index refusing a write
log = logging.getLogger(__name__)

OUTBOX = "outbox"
PROCESSED_EVENTS = "processed_events"
# Sent outbox rows are kept a week for inspection, then expire.
SENT_RETENTION = timedelta(days=7)
# What staff did through the service's API (opr_shared.web.RequestContext).
STAFF_AUDIT = "staff_audit"
STAFF_AUDIT_RETENTION = timedelta(days=400)

# Units of work by outcome, and how many times their transactions ran: a run
# beyond the first is a transaction run again after a conflict (two writers of
# one document) or a transient error. Runs per unit well above 1 point at a
# document every transaction of a kind updates.
UNITS_OF_WORK = Counter(
    "units_of_work_total",
    "Units of work (transactions) by outcome: committed, already_processed, failed",
    ["service", "outcome"],
)
TRANSACTION_RUNS = Counter(
    "transaction_runs_total",
    "Runs of unit-of-work transactions (first runs and runs again after a conflict)",
    ["service"],
)
UNIT_OF_WORK_SECONDS = Histogram(
    "unit_of_work_seconds",
    "Time from a unit of work's start to its commit or failure, every run included",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


# A pooled connection unused this long is closed rather than reused. Servers and
# the network between may drop idle connections (the local stack's database
# after 300 s): the next request on such a connection failed with "connection
# closed", and where writes are not retried (the local stack) that reached the
# user as a 500.
MAX_IDLE_SECONDS = 60.0


def make_client(
    uri: str,
    app_name: str,
    *,
    max_idle_seconds: float = MAX_IDLE_SECONDS,
    max_pool_size: int | None = None,
) -> AsyncMongoClient[Document]:
    """A client with the services' options; ``max_pool_size`` caps its connections
    (None: the driver's default, or what ``uri`` says)."""
    pool: dict[str, Any] = {} if max_pool_size is None else {"maxPoolSize": max_pool_size}
    return AsyncMongoClient(
        uri,
        appname=app_name,
        tz_aware=True,
        uuidRepresentation="standard",
        serverSelectionTimeoutMS=5000,
        maxIdleTimeMS=int(max_idle_seconds * 1000),
        **pool,
    )


def plumbing_indexes() -> dict[str, list[IndexModel]]:
    """Indexes of the collections this module owns, created by every service."""
    return {
        OUTBOX: [
            IndexModel([("status", ASCENDING), ("seq", ASCENDING)]),
            IndexModel(
                [("sent_at", ASCENDING)], expireAfterSeconds=int(SENT_RETENTION.total_seconds())
            ),
        ],
        PROCESSED_EVENTS: [IndexModel([("handled_at", ASCENDING)])],
        STAFF_AUDIT: [
            IndexModel(
                [("at", ASCENDING)],
                expireAfterSeconds=int(STAFF_AUDIT_RETENTION.total_seconds()),
            ),
            IndexModel([("actor", ASCENDING), ("at", ASCENDING)]),
        ],
    }


async def ensure_indexes(db: AsyncDatabase[Document], indexes: dict[str, list[IndexModel]]) -> None:
    for collection, models in indexes.items():
        if models:
            await db[collection].create_indexes(models)


# --- updates that answer the document --------------------------------------------
#
# One ``findAndModify``: the update and the document as it is afterwards in one
# request. (SecantusDB, the local stack's database, planned the write of every
# findAndModify with a filter as a scan of the whole collection, so this used to
# be an update and then a read, two requests; ``opr_shared.mongoserver`` has it
# look the document up by its ``_id``.) Filters put ``_id`` first: that server
# plans a multi-field filter on the first clause an index serves.


async def update_by_id(
    collection: AsyncCollection[Document],
    doc_id: Any,
    update: Document,
    *,
    where: Document | None = None,
    session: AsyncClientSession | None = None,
    projection: Document | None = None,
    upsert: bool = False,
) -> Document | None:
    """Apply ``update`` to the document ``doc_id`` (if it also matches ``where``)
    and return it as it is afterwards; ``None`` if no document matched."""
    if where and "_id" in where:
        raise ValueError("update_by_id: the document is named by doc_id, not in where")
    query: Document = {"_id": doc_id, **(where or {})}
    found: Document | None = await collection.find_one_and_update(
        query,
        update,
        projection=projection,
        upsert=upsert,
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    return found


async def claim_many(
    collection: AsyncCollection[Document],
    query: Document,
    update: Document,
    *,
    claimed: Document,
    sort: list[tuple[str, int]],
    limit: int,
    recheck: Document | None = None,
) -> list[Document]:
    """Up to ``limit`` documents matching ``query`` (and ``recheck``), in ``sort``
    order, after ``update``; ``claimed`` names what the update marks them with (a
    claim id of this call's own), so a document another claimer took in between
    is left out.

    Three requests however many are taken: the candidates, read through the
    query's index; one update of them all by ``_id`` with the query re-asserted
    (a candidate another claimer took no longer matches); the taken ones read back.

    ``recheck`` holds conditions that only the update asserts, kept out of the
    search so that the search stays on its index: a sorted search whose filter
    has a field the index lacks is planned by the local stack's database as a
    scan of the whole collection. A candidate failing them is not taken (nor
    replaced by a later one).
    """
    if limit < 1:
        return []
    rows = await collection.find(query, {"_id": 1}).sort(sort).limit(limit).to_list()
    if not rows:
        return []
    ids = [row["_id"] for row in rows]
    where = {key: value for key, value in {**query, **(recheck or {})}.items() if key != "_id"}
    result = await collection.update_many({"_id": {"$in": ids}, **where}, update)
    if result.modified_count == 0:
        return []
    taken = await collection.find({"_id": {"$in": ids}, **claimed}).to_list()
    order = {doc_id: i for i, doc_id in enumerate(ids)}
    return sorted(taken, key=lambda doc: order[doc["_id"]])


class AlreadyProcessed(Exception):
    """The consumed event was handled before: the transaction was rolled back."""


@dataclass
class Transaction:
    db: AsyncDatabase[Document]
    session: AsyncClientSession
    producer: str
    causation_id: str | None = None
    events: list[Envelope] = field(default_factory=list)
    committed_hooks: list[Callable[[], None]] = field(default_factory=list)

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` once this transaction has committed (not after a run that
        was rolled back and run again: only the hooks of the committed run count).
        For nudging work in this process that reads what the transaction wrote; a
        hook that raises is logged, the commit stands."""
        self.committed_hooks.append(hook)

    def publish(
        self,
        payload: EventPayload,
        *,
        subject: str,
        occurred_at: datetime | None = None,
    ) -> Envelope:
        """Record an event to be written to the outbox when this transaction commits."""
        if payload.producer != self.producer:
            raise ValueError(f"{self.producer} cannot publish {payload.event_type}")
        correlation_id = correlation_id_var.get() or str(uuid.uuid4())
        envelope = Envelope.wrap(
            payload,
            subject=subject,
            correlation_id=correlation_id,
            causation_id=self.causation_id,
            occurred_at=occurred_at,
        )
        self.events.append(envelope)
        return envelope


def outbox_row(envelope: Envelope, created_at: datetime, seq: int) -> Document:
    return {
        "seq": seq,
        "_id": str(envelope.event_id),
        "topic": envelope.topic,
        "key": envelope.subject,
        "headers": envelope.headers(),
        "value": Binary(envelope.to_bytes()),
        "event_type": envelope.event_type,
        "status": "pending",
        "created_at": created_at,
        "attempts": 0,
    }


TRANSACTION_OPTIONS: dict[str, Any] = {
    "read_concern": ReadConcern("snapshot"),
    "write_concern": WriteConcern("majority"),
    "read_preference": ReadPreference.PRIMARY,
}

# One piece of a unit of work: the work, the consumed event it handles (its
# processed mark is written with it) and what caused it.
_Step = tuple[Callable[[Transaction], Awaitable[Any]], uuid.UUID | None, str | None]


class UnitOfWork:
    def __init__(self, client: AsyncMongoClient[Document], database: str, producer: str) -> None:
        self.client = client
        self.db: AsyncDatabase[Document] = client[database]
        self.producer = producer
        # Every series from the start, at zero: a scrape before the first
        # transaction shows 0 rather than nothing.
        for outcome in ("committed", "already_processed", "failed"):
            UNITS_OF_WORK.labels(producer, outcome)
        TRANSACTION_RUNS.labels(producer)
        UNIT_OF_WORK_SECONDS.labels(producer)
        # Called after a transaction that wrote outbox rows committed (the relay's
        # wake-up in this process; other replicas' rows reach it by change stream
        # or sweep).
        self.on_outbox: Callable[[], None] | None = None

    async def run(
        self,
        work: Callable[[Transaction], Awaitable[T]],
        *,
        handled_event_id: uuid.UUID | None = None,
        causation_id: str | None = None,
    ) -> T:
        """Run ``work`` in a transaction; write its events to the outbox in the same one.

        With ``handled_event_id``, the event's processed mark is written in the
        same transaction; if the mark exists already nothing is changed and
        :class:`AlreadyProcessed` is raised.
        """
        results = await self._transact([(work, handled_event_id, causation_id)])
        return cast(T, results[0])

    async def run_together(
        self, steps: Sequence[tuple[Callable[[Transaction], Awaitable[T]], str | None]]
    ) -> list[T]:
        """Run several pieces of work in ONE transaction, in order, each ``(work,
        causation id)`` with its own :class:`Transaction` (its events are caused by
        that id); a conflict runs them all again. One commit for work that would
        otherwise take one each."""
        return await self._transact([(work, None, cause) for work, cause in steps])

    async def run_events(
        self, steps: Sequence[tuple[uuid.UUID, Callable[[Transaction], Awaitable[object]]]]
    ) -> None:
        """Handle several consumed events, in order, in ONE transaction: each
        ``(event id, work)`` gets its own :class:`Transaction` (its events are
        caused by that event) and its processed mark; all of it commits together.

        A later step reads what an earlier one wrote. If any of the events was
        processed before, or any step fails, nothing is changed: the caller
        handles the events one at a time instead (:class:`AlreadyProcessed` for
        the first case).

        One attempt only: a write conflict (another transaction changed one of
        the documents first) rolls it back like a failure, and the events are
        then handled one at a time, each retried on conflicts as usual. Run
        again whole, a batch kept colliding with the requests of the students
        it touched, and held their documents for longer each time.
        """
        await self._transact(
            [(work, event_id, None) for event_id, work in steps], retry_conflicts=False
        )

    async def _transact(self, steps: Sequence[_Step], *, retry_conflicts: bool = True) -> list[Any]:
        wrote_outbox = False
        hooks: list[Callable[[], None]] = []
        runs = TRANSACTION_RUNS.labels(self.producer)

        async def attempt(session: AsyncClientSession) -> list[Any]:
            nonlocal wrote_outbox, hooks
            wrote_outbox = False
            hooks = []
            runs.inc()
            await self._mark_processed(
                [event_id for _, event_id, _ in steps if event_id is not None], session
            )
            events: list[Envelope] = []
            committed_hooks: list[Callable[[], None]] = []
            results: list[Any] = []
            for work, event_id, causation_id in steps:
                tx = Transaction(
                    db=self.db,
                    session=session,
                    producer=self.producer,
                    causation_id=causation_id or (str(event_id) if event_id is not None else None),
                )
                results.append(await work(tx))
                events += tx.events
                committed_hooks += tx.committed_hooks
            hooks = committed_hooks
            if events:
                # The relay publishes in ``seq`` order. Taken as late as possible
                # (after the work, on the last attempt), a nanosecond clock orders
                # the rows of two conflicting transactions of one student as they
                # committed; the index orders the rows within one transaction.
                # (BSON dates keep only milliseconds: too coarse for this.)
                base = time.time_ns()
                now = datetime.now(UTC)
                rows = [outbox_row(env, now, base + i) for i, env in enumerate(events)]
                await self.db[OUTBOX].insert_many(rows, session=session)
                wrote_outbox = True
            return results

        began = time.perf_counter()
        outcome = "failed"
        try:
            async with self.client.start_session() as session:
                if retry_conflicts:
                    results = await session.with_transaction(attempt, **TRANSACTION_OPTIONS)
                else:
                    await session.start_transaction(**TRANSACTION_OPTIONS)
                    try:
                        results = await attempt(session)
                    except BaseException:
                        if session.in_transaction:
                            await session.abort_transaction()
                        raise
                    await session.commit_transaction()
            outcome = "committed"
        except AlreadyProcessed:
            outcome = "already_processed"
            raise
        finally:
            UNITS_OF_WORK.labels(self.producer, outcome).inc()
            UNIT_OF_WORK_SECONDS.labels(self.producer).observe(time.perf_counter() - began)
        if wrote_outbox and self.on_outbox is not None:
            self.on_outbox()
        for hook in hooks:
            try:
                hook()
            except Exception:
                log.exception("an after-commit hook failed")
        return results

    async def _mark_processed(
        self, event_ids: list[uuid.UUID], session: AsyncClientSession
    ) -> None:
        """Write the processed marks of ``event_ids``; :class:`AlreadyProcessed` if
        one exists (the unique ``_id`` refuses it, so the transaction rolls back)."""
        if not event_ids:
            return
        now = datetime.now(UTC)
        marks = [{"_id": str(event_id), "handled_at": now} for event_id in event_ids]
        try:
            if len(marks) == 1:
                await self.db[PROCESSED_EVENTS].insert_one(marks[0], session=session)
            else:
                await self.db[PROCESSED_EVENTS].insert_many(marks, session=session)
        except DuplicateKeyError as exc:
            raise AlreadyProcessed(str(event_ids[0])) from exc
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if errors and all(e.get("code") == DUPLICATE_KEY for e in errors):
                raise AlreadyProcessed(
                    ", ".join(str(e.get("op", {}).get("_id")) for e in errors)
                ) from exc
            raise

    async def is_processed(self, event_id: uuid.UUID) -> bool:
        return (
            await self.db[PROCESSED_EVENTS].find_one({"_id": str(event_id)}, {"_id": 1}) is not None
        )
