"""A process counts as gone only once all of it is gone: a main thread that has
ended shows as a zombie while the process's other threads still run (and may
still hold its ports), and ``make down`` must wait for those too."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

from opr_shared.localinfra import pid_alive

_LEADER_ENDS_FIRST = """
import ctypes, sys, threading, time
def linger():
    sys.stdin.read()  # until the test closes the pipe
threading.Thread(target=linger).start()
ctypes.CDLL(None).pthread_exit(None)
"""


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        raw = fh.read()
    return raw[raw.rfind(")") + 2]


def _until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the process never reached the expected state"
        time.sleep(0.02)


def test_a_process_whose_main_thread_ended_first_is_alive_until_its_last_thread_ends() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _LEADER_ENDS_FIRST], stdin=subprocess.PIPE)
    try:
        _until(lambda: _state(proc.pid) == "Z")
        assert proc.poll() is None  # its parent cannot reap it yet
        assert pid_alive(proc.pid)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
    assert proc.wait(10) == 0
    assert not pid_alive(proc.pid)


def test_an_unreaped_zombie_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        _until(lambda: _state(proc.pid) == "Z")
        assert not pid_alive(proc.pid)
    finally:
        proc.wait(10)


def test_a_live_process_is_alive_and_a_reused_pid_is_not() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        assert pid_alive(proc.pid)
        assert not pid_alive(proc.pid, start_ticks="1")
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)
