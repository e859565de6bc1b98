"""File checks (PDF parsing, image decoding, face detection, the card crop) off the
event loop, on two dedicated threads.

Two, because the machine's cores bound the useful concurrency of CPU work, and a
thread that has decoded an image keeps a malloc arena and an OpenCV detector of its
own: the default pool's threads would each hold their share of resident memory.
Uploads beyond two wait their turn here.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

R = TypeVar("R")

_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="file-checks")


async def off_loop(work: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """Run ``work(*args, **kwargs)`` on the file-check threads."""
    call = functools.partial(work, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_THREADS, call)
