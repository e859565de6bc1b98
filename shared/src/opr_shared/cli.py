"""The command line every service has: serve (default), or list or replay dead letters."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from opr_shared import collector, eventloop
from opr_shared.jsonlog import configure_logging
from opr_shared.messaging.connection import kafka_client_options
from opr_shared.messaging.deadletters import read_dead_letters, replay_dead_letters
from opr_shared.runtime import ServiceRuntime
from opr_shared.settings import ServiceSettings
from opr_shared.store.mongo import ensure_indexes

KEEP_ALIVE_SECONDS = 75


def main(
    argv: list[str] | None,
    *,
    settings_factory: Callable[[], ServiceSettings],
    build_runtime: Callable[[ServiceSettings], ServiceRuntime],
    create_app: Callable[[ServiceSettings], FastAPI],
) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the HTTP API and the event consumer (default)")
    dl = sub.add_parser("dead-letters", help="inspect or replay this service's dead letters")
    dl.add_argument("action", choices=["list", "replay"])
    dl.add_argument("--id", action="append", help="replay only these (partition:offset)")
    args = parser.parse_args(argv)
    settings = settings_factory()
    configure_logging(settings.service_name, settings.log_level)

    if args.command in (None, "serve"):
        app = create_app(settings)
        collector.settle()
        uvicorn.run(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            timeout_graceful_shutdown=20,
            # Longer than any client's idle keep-alive (the gateway's 30 s, an
            # ingress's 60 s): the client closes an idle connection first, never
            # the server just as a request is sent on it.
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            loop=eventloop.LOOP,
            http=eventloop.HTTP,
        )
        return 0

    async def dead_letters() -> None:
        options = kafka_client_options(settings)
        if args.action == "list":
            for dead in await read_dead_letters(
                settings.kafka_bootstrap_servers, settings.service_name, options=options
            ):
                print(json.dumps(dead.summary()))
            return
        runtime = build_runtime(settings)
        await ensure_indexes(runtime.db, runtime.indexes)
        try:
            only = set(args.id) if args.id else None
            counts = await replay_dead_letters(
                runtime.consumer, settings.kafka_bootstrap_servers, only=only, options=options
            )
            print(json.dumps(counts))
        finally:
            await runtime.mongo.close()

    eventloop.run(dead_letters())
    return 0
