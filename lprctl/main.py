"""``lprctl``: run the platform on one machine and administer it.

Commands:
  up [--demo] [--exit-after-demo]   start everything and supervise it until Ctrl-C/SIGTERM
  down                              stop a running ``lprctl up`` from another shell
  status                            show each component and whether it is ready
  migrate                           apply every service's migrations to DATABASE_URL
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

import httpx

import lprctl.commands
from lpr_common.settings import LprSettings
from lprctl.stack import SERVICES, Stack, StackError, check_database_url, read_state


def _fail(message: str, code: int = 2) -> int:
    print(f"lprctl: {message}", file=sys.stderr)
    return code


def cmd_up(args: argparse.Namespace) -> int:
    """Start the stack, print its URLs, optionally run the demo, supervise until stopped."""
    settings = LprSettings()
    external = settings.database_url if _database_configured() else None
    stack = Stack(settings, external_database_url=external)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stack.request_stop()
        # A second Ctrl-C while stopping must not leave children behind half-stopped.
        signal.signal(signum, signal.SIG_IGN)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
    except StackError as exc:
        return _fail(str(exc))
    print("platform is up:")
    for component in stack.components:
        if component.url:
            print(f"  {component.name:<12} {component.url}   (OpenAPI: {component.url}/docs)")
    try:
        if args.demo:
            from lprctl.demo import run_demo

            run_demo(settings)
            if args.exit_after_demo:
                return 0
        print("press Ctrl-C to stop")
        stack.supervise()
    finally:
        print("stopping ...")
        stack.stop()
        print("stopped")
    return 0


def _database_configured() -> bool:
    return "DATABASE_URL" in os.environ or "LPR_DATABASE_URL" in os.environ


def cmd_down(_: argparse.Namespace) -> int:
    """Stop the ``lprctl up`` recorded in the data directory."""
    settings = LprSettings()
    state = read_state(settings.data_dir)
    if state is None:
        print("not running")
        return 0
    pid = state.get("pid")
    if isinstance(pid, int):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pid = None
    deadline = time.monotonic() + 60
    while isinstance(pid, int) and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    # If lprctl itself is gone (killed), stop what it left behind.
    components = state.get("components")
    if isinstance(components, dict):
        for info in components.values():
            child = info.get("pid") if isinstance(info, dict) else None
            if isinstance(child, int):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child, signal.SIGTERM)
    (settings.data_dir / "lprctl.json").unlink(missing_ok=True)
    print("stopped")
    return 0


def cmd_status(_: argparse.Namespace) -> int:
    """Print each component's state; exit 0 only when everything is ready."""
    settings = LprSettings()
    state = read_state(settings.data_dir)
    if state is None:
        print("not running (no lprctl up recorded in " + str(settings.data_dir) + ")")
        return 3
    print(f"lprctl pid {state.get('pid')}, database {state.get('database')}")
    all_ready = True
    with httpx.Client(timeout=2.0) as client:
        for spec in SERVICES:
            url = spec.url(settings)
            try:
                response = client.get(f"{url}/readyz")
                verdict = "ready" if response.status_code == 200 else f"not ready {response.text}"
            except httpx.HTTPError as exc:
                verdict = f"down ({type(exc).__name__})"
            all_ready &= verdict == "ready"
            print(f"  {spec.name:<12} {url:<28} {verdict}")
    return 0 if all_ready else 1


def cmd_migrate(_: argparse.Namespace) -> int:
    """Apply all migrations to the configured database."""
    from lpr_common.migrations import upgrade

    settings = LprSettings()
    try:
        check_database_url(settings.database_url)
    except StackError as exc:
        return _fail(str(exc))
    for spec in SERVICES:
        upgrade(spec.package, spec.name, settings.database_url)
        print(f"{spec.name}: up to date")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="lprctl", description="Run and administer the LPR platform."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the whole platform and supervise it")
    up.add_argument("--demo", action="store_true", help="run the demo once the stack is ready")
    up.add_argument("--exit-after-demo", action="store_true", help="stop everything after the demo")
    up.set_defaults(handler=cmd_up)
    commands.add_parser("down", help="stop a running `lprctl up`").set_defaults(handler=cmd_down)
    commands.add_parser("status", help="show what runs and whether it is ready").set_defaults(
        handler=cmd_status
    )
    commands.add_parser("migrate", help="apply migrations to DATABASE_URL").set_defaults(
        handler=cmd_migrate
    )
    # Each capability adds its commands in its own module under lprctl/commands/.
    for info in sorted(pkgutil.iter_modules(lprctl.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"lprctl.commands.{info.name}")
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run lprctl."""
    args = build_parser().parse_args(argv)
    raise SystemExit(args.handler(args))
