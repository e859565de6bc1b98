"""Fixtures shared by the unit tests of the shared package."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from secantus import SecantusDBServer


@pytest.fixture
def secantus_server() -> Iterator[SecantusDBServer]:
    """An in-memory SecantusDB server on a free port, stopped afterwards (the
    patches a test installs apply to it as to the local stack's)."""
    server = SecantusDBServer(port=0, storage_path=":memory:")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_secantus() -> Iterator[Callable[[], SecantusDBServer]]:
    """Starts in-memory SecantusDB servers on free ports, each stopped afterwards:
    for a test that needs more than one, or one started after it installs a patch."""
    started: list[SecantusDBServer] = []

    def start() -> SecantusDBServer:
        server = SecantusDBServer(port=0, storage_path=":memory:")
        server.start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
