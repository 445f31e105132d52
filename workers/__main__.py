"""Worker entry point: ``uv run python -m workers [dramatiq options]``.

Configures JSON logging here, in the entry point, then runs Dramatiq's own process
manager on ``workers.actors``. Child processes inherit the logging setup (fork), so
every line, the master's included, is JSON with the request id.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

from dramatiq.cli import main as dramatiq_main
from dramatiq.cli import make_argument_parser

from service.core.logs import configure_logging
from service.core.settings import SettingsError, get_settings


def main(argv: list[str] | None = None) -> int:
    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"hostmaster worker: {exc}", file=sys.stderr)  # noqa: T201 - before logging exists
        return 2
    configure_logging("worker", settings.log_level)
    metrics_dir = _serve_metrics(settings.metrics_host, settings.metrics_port)
    parser = make_argument_parser()  # type: ignore[no-untyped-call]
    args = parser.parse_args(["workers.actors", "--skip-logging", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(dramatiq_main(args) or 0)  # type: ignore[no-untyped-call]
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve_metrics(host: str, port: int) -> str | None:
    """Have Dramatiq's Prometheus middleware serve every worker process's metrics on host:port.

    The worker processes write their samples into a directory of this master's own (Prometheus
    multiprocess mode); it must be set before prometheus_client or the middleware is imported.
    """
    if not port:
        return None
    directory = tempfile.mkdtemp(prefix="hostmaster-worker-metrics-")
    os.environ.update(  # Dramatiq's own names, lower case
        {
            "PROMETHEUS_MULTIPROC_DIR": directory,
            "dramatiq_prom_db": directory,
            "dramatiq_prom_host": host,
            "dramatiq_prom_port": str(port),
        }
    )
    return directory


if __name__ == "__main__":
    sys.exit(main())
