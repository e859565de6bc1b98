"""``python -m opr_shared.devstack up|down|status`` (what ``make up/down/status`` run).

Data, logs and pid files live in ``<repo>/.data`` (``OPR_DATA_DIR`` overrides);
ports come from ``OPR_PORT_*`` (see :class:`~opr_shared.devstack.stack.StackPorts`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from opr_shared.devstack.stack import Stack
from opr_shared.localinfra import InfraError, NotReadyError

DATA_DIR_ENV = "OPR_DATA_DIR"


def find_repo_root(start: Path | None = None) -> Path:
    """The nearest folder holding the workspace's ``uv.lock`` (from the cwd, then this file)."""
    for origin in (start or Path.cwd(), Path(__file__).resolve()):
        for candidate in (origin, *origin.parents):
            if (candidate / "uv.lock").is_file() and (candidate / "pyproject.toml").is_file():
                return candidate
    return Path.cwd()


def default_data_dir() -> Path:
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    return find_repo_root() / ".data"


def _say(message: str) -> None:
    print(f"  {message}", flush=True)


def print_urls(stack: Stack) -> None:
    ep = stack.endpoints
    width = 14
    lines = [
        "",
        f"{'Portal':<{width}} {stack.gateway_url}/",
        f"API docs (through the gateway; the list is at {stack.gateway_url}/api/):",
        *(f"  {name:<{width - 2}} {stack.api_url(name)}/docs" for name in stack.services),
        f"{'Kafka':<{width}} {ep.kafka_bootstrap}",
        f"{'MongoDB':<{width}} {ep.mongodb_uri}",
        f"{'S3':<{width}} {ep.s3_endpoint}  "
        f"(access key {ep.s3_access_key}, secret key {ep.s3_secret_key}; "
        "credentials are not checked locally)",
        f"{'Mail folder':<{width}} {ep.maildir}  (one .eml file per message)",
        f"{'Logs':<{width}} {stack.logs_dir}",
        f"{'Data':<{width}} {stack.data_dir}",
        "",
    ]
    print("\n".join(lines), flush=True)


def cmd_up(stack: Stack) -> int:
    if stack.is_ready():
        print("The system is already running.")
        print_urls(stack)
        return 0
    print(f"Starting the system (data in {stack.data_dir}) ...", flush=True)
    try:
        stack.start()
    except NotReadyError as exc:
        print(f"\nFAILED: {exc.name} did not start: {exc.reason}", file=sys.stderr)
        if exc.log_path is not None:
            print(f"log: {exc.log_path}", file=sys.stderr)
        if exc.log_tail:
            print(f"--- last lines of {exc.name}'s log ---\n{exc.log_tail}", file=sys.stderr)
        print("What this command started has been stopped again.", file=sys.stderr)
        return 1
    except InfraError as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    print("The system is up.")
    print_urls(stack)
    return 0


def cmd_down(stack: Stack) -> int:
    if not stack.is_running():
        print("Nothing is running.")
        return 0
    print("Stopping the system (data is kept) ...", flush=True)
    try:
        stack.stop(remove_data=False)
    except InfraError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print("Stopped.")
    return 0


def cmd_status(stack: Stack) -> int:
    statuses = stack.status()
    print(f"{'component':<16} {'pid':>8} {'port':>6}  state")
    for s in statuses:
        state = "ready" if s.ready else ("running, not ready" if s.running else "stopped")
        pid = str(s.pid) if s.pid else "-"
        port = str(s.port) if s.port else "-"
        print(f"{s.name:<16} {pid:>8} {port:>6}  {state}")
    if any(s.running for s in statuses):
        print_urls(stack)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m opr_shared.devstack", description="Run the whole system locally."
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "--data-dir", type=Path, default=None, help=f"default: <repo>/.data or ${DATA_DIR_ENV}"
    )
    args = parser.parse_args(argv)
    data_dir = (args.data_dir or default_data_dir()).resolve()
    stack = Stack.for_data_dir(data_dir, progress=_say)
    command = {"up": cmd_up, "down": cmd_down, "status": cmd_status}[args.command]
    return command(stack)


if __name__ == "__main__":
    sys.exit(main())
