"""Worker entry point: ``uv run python -m workers [dramatiq options]``.

Configures JSON logging here, in the entry point, then runs Dramatiq's own process
manager on ``workers.actors``. Child processes inherit the logging setup (fork), so
every line, the master's included, is JSON with the request id.
"""

from __future__ import annotations

import sys

from dramatiq.cli import main as dramatiq_main
from dramatiq.cli import make_argument_parser

from service.logs import configure_logging
from service.settings import SettingsError, get_settings


def main(argv: list[str] | None = None) -> int:
    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"hostmaster worker: {exc}", file=sys.stderr)  # noqa: T201 - before logging exists
        return 2
    configure_logging("worker", settings.log_level)
    parser = make_argument_parser()  # type: ignore[no-untyped-call]
    args = parser.parse_args(["workers.actors", "--skip-logging", *(sys.argv[1:] if argv is None else argv)])
    return int(dramatiq_main(args) or 0)  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    sys.exit(main())
