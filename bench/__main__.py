"""``python -m bench``: simulate an intake on a private embedded stack (or the running one)."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opr_shared import collector, eventloop
from opr_shared.devstack.__main__ import default_data_dir
from opr_shared.devstack.stack import Stack, StackPorts

from bench.driver import Config
from bench.run import RESULTS, run, target_of, write


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--n", type=int, default=500, help="admitted students (default 500)")
    parser.add_argument(
        "--users", type=int, default=200, help="students acting at once (default 200)"
    )
    parser.add_argument("--staff", type=int, default=4, help="reviewers per queue (default 4)")
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        metavar="S",
        help="mean pause of a student before each step, in seconds (default 0: none)",
    )
    parser.add_argument(
        "--photo",
        type=_size,
        default=Config.photo_size,
        metavar="WxH",
        help="pixels of the card photo each student uploads (default 2419x3024, a 4:5 "
        "crop of a 12-megapixel phone picture; 480x600 for the small one of earlier runs)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="give up on the cohort after (s); default 840, plus 15 times --think",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="drive the stack `make up` runs (its data folder) instead of a private one",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go")
    parser.add_argument("--name", default="latest", help="file name of the results")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the raw-server probes")
    parser.add_argument("--ceiling-seconds", type=float, default=4.0)
    parser.add_argument(
        "--profile", type=int, default=0, metavar="S", help="py-spy the services for S seconds"
    )
    return parser.parse_args(argv)


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, got {text!r}")
    return int(width), int(height)


def keep_logs(logs: Path, to: Path) -> Path:
    """A copy of the private stack's logs (a run that failed): the stack is deleted."""
    shutil.rmtree(to, ignore_errors=True)
    shutil.copytree(logs, to)
    return to


def say(message: str) -> None:
    print(f"  {message}", flush=True)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    # A terminated run still stops its private stack (see the finally below).
    signal.signal(signal.SIGTERM, _interrupted)
    config = Config(
        n=args.n,
        users=min(args.users, args.n),
        staff=args.staff,
        # Seven pauses a journey, and the slowest students' pauses add up.
        timeout=args.timeout if args.timeout is not None else 840.0 + 15 * args.think,
        think=args.think,
        photo_size=args.photo,
    )
    if args.reuse:
        stack = Stack.for_data_dir(default_data_dir(), progress=say)
        if not stack.is_ready():
            print("The system is not running: `make up` first, or leave out --reuse.")
            return 1
        label = f"the running stack ({stack.data_dir})"
    else:
        folder = Path(tempfile.mkdtemp(prefix="opr-bench-"))
        stack = Stack(folder, StackPorts.free(), progress=say)
        print(f"Starting a private stack in {folder} ...", flush=True)
        stack.start()
        label = "private embedded stack (Tansu, SecantusDB, localbucket, SMTP sink)"
    result: dict[str, Any] | None = None
    try:
        pauses = f", pausing {config.think:g} s a step" if config.think else ""
        print(f"Intake of {config.n} students, {config.users} at once{pauses} ...", flush=True)
        collector.settle()
        result, intake = eventloop.run(
            run(
                target_of(stack),
                config,
                stack_label=label,
                measure_ceiling=not args.no_ceiling,
                ceiling_seconds=args.ceiling_seconds,
                profile_dir=args.out / "profiles" if args.profile else None,
                profile_seconds=args.profile or 60,
            )
        )
    finally:
        if not args.reuse:
            # A second Ctrl-C or TERM must not leave the servers running.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("Stopping the private stack ...", flush=True)
            try:
                stack.stop(remove_data=False)
            finally:
                if result is None or result["journeys"]["failed"]:
                    try:
                        kept = keep_logs(stack.logs_dir, args.out / f"{args.name}-logs")
                        print(f"The stack's logs are kept in {kept}", flush=True)
                    except OSError as exc:
                        print(f"The stack's logs could not be kept: {exc}", flush=True)
                shutil.rmtree(folder, ignore_errors=True)
    assert result is not None  # run() answered, or its exception left above
    paths = write(result, intake, args.out, args.name)
    print((args.out / f"{args.name}.md").read_text())
    print("written: " + ", ".join(str(p) for p in paths))
    return 0 if result["journeys"]["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
