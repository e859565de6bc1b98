"""Fixtures shared by the unit tests of the shared package."""

from __future__ import annotations

from collections.abc import Iterator

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
