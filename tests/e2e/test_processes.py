"""What the running system's own processes are built on."""

from __future__ import annotations

from pathlib import Path

import pytest
from opr_shared.devstack.stack import Stack

pytestmark = pytest.mark.e2e


def loaded_files(pid: int) -> set[str]:
    """Paths of the files mapped into process ``pid`` (its libraries and extensions)."""
    paths = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/"):
            paths.add(fields[5])
    return paths


def loads(files: set[str], package: str, extension: str) -> bool:
    return any(f"/{package}/" in path and f"/{extension}.cpython-" in path for path in files)


def test_every_service_process_and_the_gateway_run_on_uvloop_with_httptools(
    system: Stack,
) -> None:
    """uvicorn loads uvloop and httptools only when it runs on them (nothing else in
    these processes imports them), so their extensions being mapped is the sign."""
    infra = set(system.infra.components) if system.infra is not None else set()
    own = [name for name in system.components if name not in infra]
    assert {"gateway", "notifier", "documents-consumer"} <= set(own)
    for name in own:
        pid = system.process(name).pid
        assert pid is not None, name
        files = loaded_files(pid)
        assert loads(files, "uvloop", "loop"), (name, "uvloop is not loaded")
        assert loads(files, "httptools/parser", "parser"), (name, "httptools is not loaded")
