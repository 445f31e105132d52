"""`hostmaster run worker` keeps a worker running: a worker process killed with SIGKILL makes
Dramatiq's master exit, and the supervisor starts it again."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Process, children, rabbitmq_connection, start_process, wait_until

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.fixture
def supervised(stack_env: dict[str, str]) -> Iterator[Process]:
    queue = f"hostmaster_supervised_{uuid.uuid4().hex[:8]}"
    process = start_process(
        "worker-supervised",
        ["-m", "service.cli", "run", "worker", "--processes", "1", "--threads", "2"],
        {**stack_env, "HOSTMASTER_QUEUE_NAME": queue},
    )
    yield process
    process.stop()
    connection = rabbitmq_connection()
    for suffix in ("", ".DQ", ".XQ"):
        connection.channel().queue_delete(queue + suffix)
    connection.close()


def test_a_killed_worker_process_is_started_again_and_sigterm_stops_everything(supervised: Process) -> None:
    def ready() -> int:
        return sum("ready for action" in str(line.get("message")) for line in supervised.log_lines())

    wait_until(lambda: ready() >= 1, timeout=60, what="the supervised worker to start")
    master = children(supervised.popen.pid)[0]
    worker = wait_until(lambda: children(master), timeout=10, what="a worker process")[0]

    os.kill(worker, signal.SIGKILL)

    wait_until(lambda: ready() >= 2, timeout=60, what="the worker to be started again")
    lines = supervised.log_lines()
    assert any(line.get("component") == "supervisor" and "exited with" in line["message"] for line in lines)
    new_master = children(supervised.popen.pid)[0]
    assert new_master != master

    supervised.popen.send_signal(signal.SIGTERM)
    assert supervised.popen.wait(timeout=40) == 0
    wait_until(lambda: not alive(new_master), timeout=10, what="the worker to stop with its supervisor")
