"""The peer in the same run: octoDNS with octodns-bind applying the same new A records to a fresh
zone of its own on the bench's BIND, each time as a whole `octodns-sync --doit` process.

octoDNS is not a dependency of the project: it lives in a virtual environment of the benchmark's
own under .run/ (created with the standard library's venv and pip, pinned versions, reused while
the pins are unchanged). When it cannot be installed the bench says so and goes on without it.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.query
import dns.tsigkeyring
import dns.zone

from bench.stack import ROOT, say

VENV = ROOT / ".run" / "octodns"  # outside .run/bench, which every stack start empties
PINS = ("octodns==1.22.0", "octodns-bind==1.1.0")
KEY = "peer-key"
RUNS = 3
ZONES = tuple(f"peer-{run}.test" for run in range(1, RUNS + 1))  # a fresh empty zone for each run
TSIG_ENV = "BENCH_PEER_TSIG"


class Unavailable(Exception):
    """octoDNS could not be installed or run; the message says why."""


@dataclass
class Outcome:
    seconds: list[float] = field(default_factory=list)  # one whole-process wall time per run
    served: list[int] = field(default_factory=list)  # the new records an AXFR found after each run
    note: str | None = None

    @property
    def median_s(self) -> float | None:
        return round(statistics.median(self.seconds), 3) if self.seconds else None


def install(timeout: float = 240) -> Path:
    """The octodns-sync of the bench's own environment, installed when missing or pinned otherwise."""
    sync = VENV / "bin" / "octodns-sync"
    marker = VENV / "bench-pins.txt"
    wanted = "\n".join(PINS) + "\n"
    if sync.exists() and marker.exists() and marker.read_text() == wanted:
        return sync
    shutil.rmtree(VENV, ignore_errors=True)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    python = VENV / "bin" / "python"
    deadline = time.monotonic() + timeout
    try:
        _step([sys.executable, "-m", "venv", str(VENV)], deadline)
        _step([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PINS], deadline)
    except Unavailable as pip_error:
        uv = shutil.which("uv")
        if uv is None:
            raise
        say(f"octoDNS: venv and pip failed ({pip_error}); trying uv")
        shutil.rmtree(VENV, ignore_errors=True)
        _step([uv, "venv", "--quiet", "--python", sys.executable, str(VENV)], deadline)
        _step([uv, "pip", "install", "--quiet", "--python", str(python), *PINS], deadline)
    if not sync.exists():
        raise Unavailable(f"{sync.relative_to(ROOT)} is missing after the install")
    marker.write_text(wanted)
    return sync


def run(sync: Path, count: int, port: int, secret: str, workdir: Path, timeout: float) -> Outcome:
    """``count`` new A records into each of ZONES in turn, one whole octodns-sync process each."""
    outcome = Outcome()
    deadline = time.monotonic() + timeout
    for zone in ZONES:
        left = deadline - time.monotonic()
        if left < 5:
            outcome.note = f"{len(outcome.seconds)} of {RUNS} octoDNS runs fitted in {timeout:.0f} s"
            break
        config = _configure(workdir / zone, zone, count, port)
        env = {key: value for key, value in os.environ.items() if not key.startswith(("HOSTMASTER_", "VIRTUAL_ENV"))}
        env[TSIG_ENV] = secret
        log = workdir / f"{zone}.log"
        started = time.perf_counter()
        with log.open("wb") as output:
            try:
                finished = subprocess.run(
                    [str(sync), "--config-file", config.name, "--doit"],
                    cwd=config.parent,
                    env=env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    timeout=left,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                outcome.note = f"octodns-sync did not end within {left:.0f} s; see {log.relative_to(ROOT)}"
                break
        elapsed = time.perf_counter() - started
        if finished.returncode != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            outcome.note = f"octodns-sync exited {finished.returncode}: {tail[0][-300:]}"
            break
        served = served_count(zone, port, secret)
        say(f"octoDNS: {zone} in {elapsed:.2f} s, {served} of {count} served")
        outcome.served.append(served)
        if served != count:
            outcome.note = f"after octodns-sync, an AXFR of {zone} shows {served} of {count} records"
            break
        outcome.seconds.append(round(elapsed, 3))
    return outcome


def served_count(zone: str, port: int, secret: str) -> int:
    keyring = dns.tsigkeyring.from_text({KEY: secret})
    transfer = dns.query.xfr("127.0.0.1", zone, port=port, keyring=keyring, keyalgorithm="hmac-sha256", lifetime=60)
    return sum(1 for name in dns.zone.from_xfr(transfer).nodes if name.to_text().startswith("cs-"))


def _configure(directory: Path, zone: str, count: int, port: int) -> Path:
    """The octoDNS repository a user would keep: a YAML zone as source, the BIND as RFC 2136 target."""
    records = directory / "zones"
    records.mkdir(parents=True, exist_ok=True)
    lines = ["---", "ns1:", "  type: A", "  value: 127.0.0.1"]  # already in the zone: no change
    for index in range(count):
        lines += [f"cs-{index}:", "  type: A", f"  value: 198.51.100.{index % 250 + 1}"]
    (records / f"{zone}.yaml").write_text("\n".join(lines) + "\n")
    config = directory / "config.yaml"
    config.write_text(
        f"""---
manager:
  max_workers: 1
providers:
  config:
    class: octodns.provider.yaml.YamlProvider
    directory: ./zones
    default_ttl: 300
    enforce_order: false
    escaped_semicolons: false
  bind:
    class: octodns_bind.Rfc2136Provider
    host: 127.0.0.1
    port: {port}
    key_name: {KEY}
    key_secret: env/{TSIG_ENV}
    key_algorithm: hmac-sha256
zones:
  {zone}.:
    sources:
      - config
    targets:
      - bind
"""
    )
    return config


def _step(command: list[str], deadline: float) -> None:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=max(1.0, deadline - time.monotonic()), check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Unavailable(f"{Path(command[0]).name} {command[1]}: {error}") from error
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise Unavailable(f"{' '.join(command[1:3])} exited {done.returncode}: {(lines or ['?'])[-1][-300:]}")
