"""The event loop and HTTP parser the system's processes are configured with."""

from __future__ import annotations

import asyncio

import uvicorn
import uvloop
from fastapi import FastAPI
from opr_shared import eventloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def test_uvicorn_with_these_settings_runs_on_uvloop_and_parses_with_httptools() -> None:
    config = uvicorn.Config(FastAPI(), loop=eventloop.LOOP, http=eventloop.HTTP)
    factory = config.get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol


def test_run_completes_the_coroutine_on_a_uvloop_loop() -> None:
    async def main() -> tuple[type[asyncio.AbstractEventLoop], int]:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()), 42

    loop_type, value = eventloop.run(main())
    assert loop_type is uvloop.Loop
    assert value == 42
