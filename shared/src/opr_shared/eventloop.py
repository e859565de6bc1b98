"""The event loop and HTTP parser every long-running process of the system uses.

Services, their consumer processes, the gateway, the local SMTP sink and the
benchmark's load generator run on uvloop (asyncio's loop on libuv) and parse
HTTP with httptools, both C extensions. Much of a service's work is small socket
operations (a database command, a Kafka fetch, a request through the gateway):
on asyncio's own loop with uvicorn's pure-Python parser, an intake of 1,000
students took 0.65 CPU-seconds per student, on these 0.56 (see the README's
benchmark section).

Both are named explicitly rather than left to uvicorn's ``auto``, which falls
back to the slower ones without a word when they are missing.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Final, TypeVar

_T = TypeVar("_T")

# uvicorn's ``loop`` and ``http`` settings.
LOOP: Final = "uvloop"
HTTP: Final = "httptools"


def run(main: Coroutine[Any, Any, _T]) -> _T:
    """Run ``main`` to completion on a new uvloop event loop (as ``asyncio.run``)."""
    # Imported here: a process that imports this module for its settings loads
    # uvloop only through uvicorn, when uvicorn runs on it.
    import uvloop

    return uvloop.run(main)
