"""What every service runs on: database, Kafka (consumer and outbox relay), bucket,
and the HTTP surface every service shares (health, readiness, metrics, logs).

A service's ``main.py`` builds one :class:`ServiceRuntime` with its settings, its
subscription table and its indexes, then :func:`create_http_app` with its
routers. Nothing else is shared; the business rules stay in the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from pymongo import IndexModel

from opr_shared.auth import JwksFetcher, KeySet, TokenVerifier, http_jwks
from opr_shared.events.envelope import dead_letter_topic_for, topic_for
from opr_shared.messaging.admin import dead_letter_router
from opr_shared.messaging.connection import kafka_client_options, kafka_security
from opr_shared.messaging.consumer import EventConsumer, KafkaDeadLetterSink, Record, Subscriptions
from opr_shared.messaging.lanes import PartitionLanes
from opr_shared.settings import ServiceSettings
from opr_shared.store.mongo import (
    STAFF_AUDIT,
    Document,
    UnitOfWork,
    ensure_indexes,
    make_client,
    plumbing_indexes,
)
from opr_shared.store.objects import ObjectStore
from opr_shared.store.outbox import OutboxRelay
from opr_shared.web import BodyLimit, RequestContext
from opr_shared.web import body_limits as web_body_limits

log = logging.getLogger(__name__)

# How a service keeps up with what it consumes: the records after the one just
# read (the partition's high watermark as of the last fetch), the time the
# consumer waited for a full lane (a slow partition holds up every other), and
# how long a lane takes over a batch and how many records it holds.
CONSUMER_LAG = Gauge(
    "consumer_lag_records",
    "Records in the partition after the one last read by the service's consumer",
    ["service", "topic", "partition"],
)
CONSUMER_LANE_WAIT = Counter(
    "consumer_lane_wait_seconds_total",
    "Time the consumer waited for room in a partition's lane",
    ["service", "topic"],
)
CONSUMER_BATCH_SECONDS = Histogram(
    "consumer_batch_seconds",
    "Time a lane took to handle one batch of a partition's records",
    ["service", "topic"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CONSUMER_BATCH_RECORDS = Histogram(
    "consumer_batch_records",
    "Records in one batch handled by a lane",
    ["service", "topic"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)


class KafkaProducer:
    """The service's producer for the outbox relay and dead letters.

    aiokafka binds a producer to the running event loop, so the client is made
    in :meth:`start`, not when the composition root is built.
    """

    def __init__(
        self, bootstrap_servers: str, client_id: str, options: dict[str, Any] | None = None
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self.options = options or {}
        self._producer: AIOKafkaProducer | None = None

    @property
    def client(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("Kafka producer not started")
        return self._producer

    async def start(self) -> None:
        if self._producer is not None:
            return
        # Tansu has no idempotent producer, and per-key order comes from the relay
        # publishing in commit order; acks=all keeps every acknowledged row durable.
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=False,
            linger_ms=5,
            request_timeout_ms=15000,
            **self.options,
        )
        try:
            await producer.start()
        except Exception:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = await self.client.send(topic, value, key, headers=headers)
        return future

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        return await self.client.send_and_wait(topic, value, key, headers=headers)

    async def metadata(self) -> None:
        await self.client.client.fetch_all_metadata()


class Worker(Protocol):
    """A background loop a service runs beside its API and consumer."""

    async def run(self) -> None: ...

    async def stop(self) -> None: ...


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        subscriptions: Subscriptions | None = None,
        indexes: dict[str, list[IndexModel]] | None = None,
        uses_bucket: bool = False,
        on_start: Callable[[ServiceRuntime], Awaitable[None]] | None = None,
        workers: Callable[[ServiceRuntime], list[Worker]] | None = None,
        signing_keys: JwksFetcher | None = None,
    ) -> None:
        self.settings = settings
        self.service = settings.service_name
        self.subscriptions = subscriptions or Subscriptions(self.service)
        self.indexes = {**plumbing_indexes(), **(indexes or {})}
        self.on_start = on_start
        self.mongo = make_client(
            settings.mongodb_uri.get_secret_value(),
            self.service,
            max_pool_size=settings.mongodb_max_pool_size,
        )
        self.db = self.mongo[settings.database_name]
        self.uow = UnitOfWork(self.mongo, settings.database_name, self.service)
        self.objects: ObjectStore | None = None
        if uses_bucket:
            if not settings.s3_endpoint:
                raise ValueError(f"{self.service} stores files: S3_ENDPOINT is required")
            self.objects = ObjectStore(
                settings.s3_endpoint,
                settings.s3_access_key.get_secret_value(),
                settings.s3_secret_key.get_secret_value(),
                settings.bucket_name,
                settings.s3_region,
            )
        client_id = settings.kafka_client_id or self.service
        self.kafka_options = kafka_client_options(settings)
        self.producer = KafkaProducer(
            settings.kafka_bootstrap_servers, f"{client_id}-relay", self.kafka_options
        )
        self.relay = OutboxRelay(
            self.db,
            self.producer,
            service=self.service,
            batch_size=settings.outbox_batch_size,
            sweep_seconds=settings.outbox_sweep_seconds,
            max_backoff_seconds=settings.outbox_max_backoff_seconds,
            linger_seconds=settings.outbox_linger_seconds,
        )
        self.uow.on_outbox = self.relay.wake
        self.consumer = EventConsumer(
            self.subscriptions,
            self.uow,
            KafkaDeadLetterSink(self.producer, self.service),
            max_attempts=settings.consumer_max_attempts,
            retry_backoff_seconds=settings.consumer_retry_backoff_seconds,
        )
        self._kafka_consumer: Any = None
        self.lanes: PartitionLanes[Record] = PartitionLanes(
            self._handle_batch,
            self._commit_offset,
            batch_size=settings.consumer_batch_size,
            commit_interval=settings.consumer_commit_interval_seconds,
            retry_backoff_seconds=settings.consumer_retry_backoff_seconds,
        )
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            client_id=client_id,
            security=kafka_security(settings),
            logger=None,
            # The one subscriber takes the record as it is (see _the_record):
            # nothing for dependency injection to do.
            apply_types=False,
        )
        self._register_subscriber()
        self.workers: list[Worker] = workers(self) if workers else []
        # Tokens are verified locally from identity's published keys (cached).
        self.token_verifier = TokenVerifier(
            KeySet(signing_keys or http_jwks(settings.signing_keys_url))
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def _handle_batch(self, records: list[Record]) -> object:
        began = time.perf_counter()
        try:
            return await self.consumer.handle_many(records)
        finally:
            topic = records[0].topic if records else ""
            CONSUMER_BATCH_SECONDS.labels(self.service, topic).observe(time.perf_counter() - began)
            CONSUMER_BATCH_RECORDS.labels(self.service, topic).observe(len(records))

    async def _commit_offset(self, partition: TopicPartition, offset: int) -> None:
        # Only this partition: a bare commit() writes the position of every
        # assigned partition of every consumed topic, for each record.
        # A refused commit (a rebalance) is logged by the lane: the record was
        # handled, handling is idempotent, the partition's next owner may read it again.
        if self._kafka_consumer is not None:
            await self._kafka_consumer.commit({partition: offset})

    def _register_subscriber(self) -> None:
        topics = self.subscriptions.topics
        if not topics:
            return

        # One subscriber for every consumed topic: routing to handlers is by
        # event type, in the subscription table. Records go to per-partition
        # lanes (opr_shared.messaging.lanes), which handle partitions side by side
        # and commit each partition's offset once its records are handled.
        lanes = self.lanes

        @self.broker.subscriber(
            *topics,
            group_id=self.settings.kafka_group_id or self.service,
            ack_policy=AckPolicy.MANUAL,
            listener=_LaneRebalanceListener(lanes),
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms,
            session_timeout_ms=self.settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=max(1000, self.settings.kafka_session_timeout_ms // 3),
            title=f"{self.service}-consumer",
            description=f"Events {self.service} consumes: "
            + ", ".join(self.subscriptions.event_types),
            decoder=_the_record,
        )
        async def on_record(message: KafkaMessage) -> None:
            raw = message.raw_message
            assert not isinstance(raw, tuple)
            if self._kafka_consumer is not message.consumer:
                read_partitions_with_room(message.consumer, lanes)
            self._kafka_consumer = message.consumer
            record = Record(
                topic=raw.topic,
                partition=raw.partition,
                offset=raw.offset,
                key=raw.key,
                value=raw.value or b"",
                headers=dict(raw.headers or ()),
            )
            partition = TopicPartition(raw.topic, raw.partition)
            highwater = self._kafka_consumer.highwater(partition)
            if highwater is not None:
                CONSUMER_LAG.labels(self.service, raw.topic, str(raw.partition)).set(
                    max(0, highwater - raw.offset - 1)
                )
            began = time.perf_counter()
            await lanes.submit(partition, raw.offset, record)
            CONSUMER_LANE_WAIT.labels(self.service, raw.topic).inc(time.perf_counter() - began)

    # -- lifecycle --------------------------------------------------------------

    def topics_used(self) -> list[str]:
        own = [topic_for(self.service), dead_letter_topic_for(self.service)]
        return sorted(set(own) | set(self.subscriptions.topics))

    async def ensure_topics(self) -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.settings.kafka_bootstrap_servers, **self.kafka_options
        )
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [t for t in self.topics_used() if t not in existing]
            for topic in missing:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(
                        [NewTopic(topic, self.settings.kafka_topic_partitions, 1)]
                    )
        finally:
            await admin.close()

    async def start(self) -> None:
        await ensure_indexes(self.db, self.indexes)
        if self.objects is not None:
            await self.objects.ensure_bucket()
        if self.settings.kafka_create_topics:
            await _retry(self.ensure_topics, "create topics")
        await _retry(self.producer.start, "start Kafka producer")
        if self.on_start is not None:
            await self.on_start(self)
        if self.settings.outbox_relay_enabled:
            self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
            if self.settings.outbox_watch:
                self._tasks.append(asyncio.create_task(self.relay.watch(), name="outbox-watch"))
        for worker in self.workers:
            self._tasks.append(asyncio.create_task(worker.run(), name=type(worker).__name__))
        if self.subscriptions.topics and self.settings.consumer_enabled:
            await _retry(self.broker.start, "start Kafka consumer")
        log.info("service started", extra={"topics": self.topics_used()})

    async def stop(self) -> None:
        # Consumer first (the lanes finish the records in hand), then the relay.
        await self.lanes.close()
        with contextlib.suppress(Exception):
            await self.broker.stop()
        for worker in self.workers:
            await worker.stop()
        await self.relay.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.relay.release_lease()
        with contextlib.suppress(Exception):
            await self.producer.stop()
        await self.mongo.close()

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, Callable[[], Awaitable[Any]]] = {
            "database": lambda: self.mongo.admin.command("ping"),
            "broker": self.producer.metadata,
        }
        if self.objects is not None:
            checks["object_store"] = self.objects.reachable
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), timeout=3)
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"unavailable: {type(exc).__name__}"
        return results

    @asynccontextmanager
    async def lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()


def read_partitions_with_room(consumer: Any, lanes: PartitionLanes[Any]) -> None:
    """Make ``consumer.getone()`` (what the FastStream subscriber reads with) return
    records only of partitions whose lane has room.

    aiokafka fetches ahead for every partition and ``getone()`` hands its
    buffered records over one partition at a time, so a record for a full lane
    used to stop the reading of every partition. Here the records of a
    partition with a full lane stay in the client's buffer, where they were
    (the client does not fetch that partition again meanwhile), and the other
    partitions are read. Pausing the partition instead would make the client
    drop what it had fetched for it and fetch it again: with a local broker
    that answers a partition far behind with a hundred records or more, the
    notifier read each record several times over.
    """
    read = consumer.getone

    async def getone(*partitions: TopicPartition) -> Any:
        if partitions:
            return await read(*partitions)
        while True:
            assigned = consumer.assignment()
            with_room = [tp for tp in assigned if not lanes.full(tp)]
            if len(with_room) == len(assigned):
                return await read()
            waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(lanes.wait_for_room())]
            if with_room:
                waits.append(asyncio.ensure_future(read(*with_room)))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()
                await asyncio.gather(*waits, return_exceptions=True)
            if with_room and not waits[-1].cancelled():
                return waits[-1].result()  # a record (or what reading raised)
            # A lane had room again (or lanes were revoked): look again.

    consumer.getone = getone


class _LaneRebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Stops the lanes of revoked partitions before another consumer takes them."""

    def __init__(self, lanes: PartitionLanes[Record]) -> None:
        self.lanes = lanes

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.lanes.revoke(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


async def _retry(step: Callable[[], Awaitable[Any]], what: str, attempts: int = 30) -> None:
    for attempt in range(1, attempts + 1):
        try:
            await step()
            return
        except Exception as exc:
            if attempt == attempts:
                raise
            log.warning("could not %s yet (%s); retrying", what, exc)
            await asyncio.sleep(1)


def create_http_app(
    runtime: ServiceRuntime,
    *,
    routers: list[APIRouter],
    title: str,
    description: str,
    version: str = "0.1.0",
    body_limits: Mapping[str, int | None] | None = None,
) -> FastAPI:
    """The service's FastAPI app: its routers under ``/api/<service>``, plus the
    shared ``/healthz``, ``/readyz`` and ``/metrics`` at the root (not routed by
    the Ingress).

    Request bodies are capped at ``settings.max_body_bytes``; ``body_limits``
    names the routes (path under the prefix) that take more, or ``None`` for a
    route that streams and caps its body itself.
    """
    service = runtime.service
    prefix = f"/api/{service}"
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=runtime.lifespan,
        docs_url=f"{prefix}/docs",
        openapi_url=f"{prefix}/openapi.json",
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.token_verifier = runtime.token_verifier
    for router in [*routers, dead_letter_router()]:
        app.include_router(router, prefix=prefix)
    _document_refusal_reasons(app)

    probes = APIRouter(include_in_schema=False)

    @probes.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @probes.get("/readyz")
    async def readyz() -> JSONResponse:
        checks = await runtime.readiness()
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @probes.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(probes)

    # Added last = outermost: refusals for size are counted and correlated too.
    app.add_middleware(
        BodyLimit,
        default=runtime.settings.max_body_bytes,
        limits=web_body_limits(prefix, body_limits or {}),
    )
    staff_audit = runtime.db[STAFF_AUDIT]

    async def audit(entry: dict[str, Any]) -> None:
        await staff_audit.insert_one(entry)

    app.add_middleware(RequestContext, service=service, audit=audit)
    return app


def _document_refusal_reasons(app: FastAPI) -> None:
    """Make the documented 422 answer true to what the services send.

    FastAPI documents 422 as its request-validation list, but a service also
    answers 422 itself with a reason (a sentence, or an object with a code and
    the problems); the OpenAPI document says so, so clients and schema checks
    accept both.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        error = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError")
        detail = (error or {}).get("properties", {}).get("detail")
        if detail is not None and "anyOf" not in detail:
            error["properties"]["detail"] = {
                "title": "Detail",
                "description": "The request's validation errors, or the service's reason "
                "for refusing it (a sentence, or an object with a code and the problems).",
                "anyOf": [
                    {key: value for key, value in detail.items() if key != "title"},
                    {"type": "string"},
                    {"type": "object"},
                ],
            }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _the_record(message: KafkaMessage) -> KafkaMessage:
    """What the consumer's handler is given: the record as FastStream parsed it,
    its body left undecoded (the lanes decode the envelope). Taking the message
    this way rather than as an injected ``Context`` spares each record a trip
    through a worker thread, where FastStream's dependency injection looks a
    context value up."""
    return message


# Dependencies are coroutines although they await nothing: FastAPI runs a plain
# function dependency in its thread pool, a thread hop for every request.


async def uow_of(request: Request) -> UnitOfWork:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime.uow


async def db_of(request: Request) -> Any:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime.db


__all__ = ["Document", "ServiceRuntime", "create_http_app", "db_of", "uow_of"]
