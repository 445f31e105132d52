"""``hostmaster run api|worker|consumer|recovery``: each process in the foreground."""

from __future__ import annotations

import argparse
import sys

from service.cli.supervise import supervise
from service.core.logs import configure_logging, uvicorn_log_config
from service.core.settings import get_settings
from service.operations import loop


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="run a process in the foreground")
    run.add_argument("process", choices=["api", "worker", "consumer", "recovery"])
    run.add_argument("--host")
    run.add_argument("--port", type=int)
    run.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (api)")


_PACKAGE = {"worker": "workers", "consumer": "consumer"}


def run(args: argparse.Namespace, rest: list[str]) -> int:
    """The process ``args.process``, in the foreground until it is asked to stop."""
    settings = get_settings()
    if args.process == "recovery":
        return loop.run_recovery(settings)
    if args.process in ("worker", "consumer"):  # each its package's entry point, under the supervisor
        configure_logging("supervisor", settings.log_level)
        command = [sys.executable, "-m", _PACKAGE[args.process], *rest]
        final = frozenset({2}) if args.process == "consumer" else frozenset()  # 2: its configuration is wrong
        return supervise(command, name=args.process, final=final)
    import uvicorn

    uvicorn.run(
        "service.app:app",
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        workers=args.workers,
        log_config=uvicorn_log_config("api", settings.log_level),
        proxy_headers=True,
        http="httptools",  # the C parser and event loop: h11 and asyncio cost more CPU per request than our handler
        loop="uvloop",
    )
    return 0
