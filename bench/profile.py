"""Where the time goes: py-spy samples the API (or the worker) processes while single-record
requests arrive in a zone already holding ``--zone-size`` RRsets — or while one change set of
``--changeset`` new RRsets is accepted and applied — and the hottest frames are printed.

    uv run --frozen python -m bench.profile [--zone-size 2000] [--requests 1000] [--process api|worker]
    uv run --frozen python -m bench.profile --zone-size 0 --changeset 5000 [--process worker]
"""

from __future__ import annotations

import argparse
import collections
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import load
from bench.__main__ import _create, _wait_for
from bench.stack import RUN_DIR, ZONE, Stack, say


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zone-size", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--process", choices=("api", "worker"), default="api")
    parser.add_argument("--changeset", type=int, default=0, help="profile one change set of this many new RRsets")
    args = parser.parse_args()
    stack = Stack()
    try:
        stack.start()
        if args.zone_size:
            changes = [
                {"op": "create", "name": f"pre-{index}.{ZONE}", "type": "A", "values": ["192.0.2.1"]}
                for index in range(args.zone_size)
            ]
            headers = {"Authorization": f"Bearer {stack.admin_key}"}
            answer = httpx.post(
                f"{stack.api_url}/api/v2/zones/{ZONE}/changes", json={"changes": changes}, headers=headers, timeout=300
            )
            _wait_for(stack, [answer.json()["request_id"]], 300)
        with tempfile.TemporaryDirectory() as directory:
            output = Path(directory) / f"{args.process}.txt"
            spy = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--subprocesses",
                    "--format",
                    "raw",
                    "--rate",
                    "200",
                    "--nonblocking",
                    "--gil",  # only threads holding the GIL: CPU spent in Python, not waits on PostgreSQL
                    "-o",
                    str(output),
                    "--pid",
                    str(stack.processes[args.process].pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(2)
            if args.changeset:
                _changeset(stack, args.changeset)
            else:
                sent = load.Load(stack.api_url, stack.admin_key).run(args.requests, _create("prof"), rate=args.rate)
                say(f"{sum(item.status == 202 for item in sent)} accepted")
            spy.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
            _, errors = spy.communicate(timeout=120)
            if not output.exists():
                raise SystemExit(f"py-spy wrote nothing: {errors.decode()[-2000:]}")
            raw = output.read_text()
            kept = RUN_DIR.parent / f"{args.process}-profile.txt"
            kept.write_text(raw)
            say(f"collapsed stacks kept in {kept.relative_to(RUN_DIR.parent.parent)} (speedscope, flamegraph.pl)")
            _report(raw, args.top)
    finally:
        stack.stop()
    return 0


def _changeset(stack: Stack, size: int) -> None:
    changes = [
        {"op": "create", "name": f"cs-{index}.{ZONE}", "type": "A", "values": ["192.0.2.2"]} for index in range(size)
    ]
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    began = time.monotonic()
    answer = httpx.post(
        f"{stack.api_url}/api/v2/zones/{ZONE}/changes", json={"changes": changes}, headers=headers, timeout=300
    )
    accepted = time.monotonic() - began
    _wait_for(stack, [answer.json()["request_id"]], 300)
    say(f"change set of {size}: {answer.status_code} in {accepted:.2f} s, succeeded {time.monotonic() - began:.2f} s")


def _report(raw: str, top: int) -> None:
    """Inclusive share of samples per frame (function file:line stripped to function and file)."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = {_frame(frame) for frame in stack.split(";")}
        for frame in frames:
            inclusive[frame] += samples
    print(f"{total} samples; inclusive share of Hostmaster's own frames:")
    ours = [
        (frame, samples)
        for frame, samples in inclusive.items()
        if any(f"({part}/" in frame for part in ("service", "db", "workers"))
    ]
    for frame, samples in sorted(ours, key=lambda item: -item[1])[:top]:
        print(f"{100 * samples / total:5.1f}%  {frame}")


def _frame(frame: str) -> str:
    name, _, where = frame.partition(" (")
    path = where.split(":")[0]
    marker = next((part for part in ("service/", "db/", "workers/", "site-packages/") if part in path), "")
    short = path.split(marker, 1)[1] if marker else Path(path).name
    return f"{name} ({marker}{short})"


if __name__ == "__main__":
    sys.exit(main())
