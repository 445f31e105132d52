"""HTTP load: a fixed offered rate measured from each request's scheduled time (so queueing
counts), as-fast-as-accepted submission, and saturation with wrk."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

Body = Callable[[int], tuple[str, str, dict[str, object]]]  # index → (method, path, JSON body)


@dataclass
class Sent:
    index: int
    status: int
    latency_s: float  # from the scheduled send time to the answer
    request_id: str | None
    scheduled_at: float = 0.0  # Unix time the request was due (sent, when as fast as accepted)


@dataclass
class Load:
    url: str
    key: str
    threads: int = 32
    sent: list[Sent] = field(default_factory=list)

    def run(self, count: int, body: Body, rate: float | None, until: float | None = None) -> list[Sent]:
        """Send ``count`` requests at ``rate`` a second (None: as fast as they are accepted); none is
        sent after ``until`` (a time.perf_counter() value), so a slow API cannot stretch the run."""
        self.sent = []
        lock = threading.Lock()
        next_index = iter(range(count))
        started = time.perf_counter() + 0.05
        wall = time.time() - time.perf_counter()  # perf_counter → Unix time

        def worker() -> None:
            parts = urlsplit(self.url)
            connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
            headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None or (until is not None and time.perf_counter() > until):
                    break
                scheduled = started + index / rate if rate else time.perf_counter()
                time.sleep(max(0.0, scheduled - time.perf_counter()))
                method, path, payload = body(index)
                try:
                    connection.request(method, path, json.dumps(payload), headers)
                    answer = connection.getresponse()
                    data = answer.read()
                except (OSError, http.client.HTTPException):
                    connection.close()
                    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
                    with lock:
                        self.sent.append(Sent(index, 0, time.perf_counter() - scheduled, None, wall + scheduled))
                    continue
                request_id = json.loads(data).get("request_id") if answer.status < 300 else None
                with lock:
                    sent = Sent(index, answer.status, time.perf_counter() - scheduled, request_id, wall + scheduled)
                    self.sent.append(sent)
            connection.close()

        threads = [threading.Thread(target=worker) for _ in range(self.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return self.sent


WRK_SCRIPT = """
local counter = 0
local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  prefix = args[1]
end
function request()
  counter = counter + 1
  local body = string.format(
    '{"name": "%s-%d-%d.bench.test", "type": "A", "values": ["192.0.2.%d"]}', prefix, id, counter, counter % 250 + 1)
  return wrk.format("POST", "/api/v1/records", nil, body)
end
"""


@dataclass
class Saturation:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def saturate(url: str, key: str, prefix: str, *, seconds: int, connections: int, threads: int = 2) -> Saturation:
    """wrk against POST /api/v1/records with unique names, for ``seconds``."""
    with tempfile.TemporaryDirectory() as directory:
        script = Path(directory) / "post.lua"
        script.write_text(WRK_SCRIPT)
        result = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "--timeout",
                "10s",
                "-H",
                f"Authorization: Bearer {key}",
                "-H",
                "Content-Type: application/json",
                "-s",
                str(script),
                url,
                "--",
                prefix,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
    text = result.stdout
    errors = int(match.group(1)) if (match := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0
    return Saturation(
        requests_per_s=float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(re.search(r"50%\s+([\d.]+\w+)", text).group(1)),  # type: ignore[union-attr]
        p99_ms=_ms(re.search(r"99%\s+([\d.]+\w+)", text).group(1)),  # type: ignore[union-attr]
        errors=errors,
    )


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")
