"""The garbage collector's settings in the system's long-running processes."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from opr_shared import cli, collector, eventloop, smtpsink
from opr_shared.devstack import gateway
from opr_shared.settings import ServiceSettings

# Run in a process of its own: settle() changes the whole interpreter's collector.
PROBE = """
import gc, json, weakref
from opr_shared import collector

class Node:
    pass

# Garbage kept alive only by a reference cycle: freed by a collection, not before.
a, b = Node(), Node()
a.peer, b.peer = b, a
cycle_freed = []
weakref.finalize(a, cycle_freed.append, True)
del a, b

kept = Node()  # alive at start-up, like a module's objects
gc.disable()  # so that only settle() collects
collector.settle()
print(json.dumps({
    "threshold": gc.get_threshold(),
    "cycle_freed": bool(cycle_freed),
    "frozen": gc.get_freeze_count(),
    "kept_in_sight": any(o is kept for o in gc.get_objects()),
    "new_in_sight": (lambda fresh: any(o is fresh for o in gc.get_objects()))(Node()),
}))
"""


def test_settle_collects_start_up_garbage_freezes_the_rest_and_sets_the_thresholds() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    seen = json.loads(done.stdout)
    assert seen["threshold"] == [collector.YOUNG, collector.MIDDLE, collector.OLD]
    assert collector.YOUNG > 700  # CPython's default
    assert seen["cycle_freed"], "garbage from start-up was frozen instead of freed"
    assert seen["frozen"] > 1000  # the interpreter's and the module's objects
    assert not seen["kept_in_sight"], "an object alive at start-up is still walked by collections"
    assert seen["new_in_sight"], "objects made after start-up must still be collectable"


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The order in which a process's start-up builds its app, settles and serves."""
    order: list[str] = []
    monkeypatch.setattr(collector, "settle", lambda: order.append("settle"))

    def serve(app: object, **_options: Any) -> None:
        assert callable(app)  # an application built before, not a name to import
        order.append("serve")

    monkeypatch.setattr(uvicorn, "run", serve)
    return order


def test_a_service_settles_once_its_app_is_built_and_before_it_serves(
    calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "configure_logging", lambda *_args: None)

    def create_app(_settings: ServiceSettings) -> FastAPI:
        calls.append("app")
        return FastAPI()

    def no_runtime(_settings: ServiceSettings) -> Any:
        raise AssertionError("serving builds its runtime inside the app")

    code = cli.main(
        [],
        settings_factory=lambda: ServiceSettings(service_name="card"),
        build_runtime=no_runtime,
        create_app=create_app,
    )
    assert code == 0
    assert calls == ["app", "settle", "serve"]


def test_the_gateway_settles_before_it_serves(
    calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_create_app = gateway.create_app

    def create_app(*args: Any, **kwargs: Any) -> Any:
        calls.append("app")
        return real_create_app(*args, **kwargs)

    monkeypatch.setattr(gateway, "create_app", create_app)
    gateway.main(["--service", "card=http://127.0.0.1:1"])
    assert calls == ["app", "settle", "serve"]


def test_the_mail_sink_settles_before_it_serves(
    calls: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    def run(main: Any) -> None:
        main.close()  # the coroutine is not run here
        calls.append("serve")

    monkeypatch.setattr(eventloop, "run", run)
    smtpsink.main(["--maildir", str(tmp_path)])
    assert calls == ["settle", "serve"]
