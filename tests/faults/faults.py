"""The faults the suite injects, each as an operator would meet it: a process killed, a service
restarted or stopped for a while. Each returns once the fault is over (the service is back)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psycopg2

from tests.support import ROOT, Bind, Process, children, start_api, wait_until

RABBITMQ_DOWN_S = 5.0
POSTGRES_DOWN_S = 5.0
BIND_DOWN_S = 10.0


def kill_a_worker_process(supervisor: Process) -> None:
    """SIGKILL one Dramatiq worker process (not its master): its messages must be delivered again."""
    master = wait_until(lambda: children(supervisor.popen.pid), timeout=60, what="the Dramatiq master")[0]
    worker = wait_until(lambda: children(master), timeout=30, what="a Dramatiq worker process")[0]
    os.kill(worker, signal.SIGKILL)


def restart_rabbitmq() -> None:
    """Stop the RabbitMQ application (every connection drops, the port refuses), then start it again.

    The broker is the machine's own, shared with everything else here, so its Erlang node is
    left running: ``stop_app``/``start_app`` is a broker restart as every client sees it.
    """
    _run(["rabbitmqctl", "-q", "stop_app"])
    time.sleep(RABBITMQ_DOWN_S)
    _run(["rabbitmqctl", "-q", "start_app"])
    _run(["rabbitmqctl", "-q", "await_startup"])


def restart_postgresql() -> None:
    """Stop PostgreSQL (fast: every session is cut off), keep it down a while, start it again."""
    version = sorted(os.listdir("/etc/postgresql"))[0]
    _run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "stop", "-m", "fast"])
    time.sleep(POSTGRES_DOWN_S)
    _run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"])


def stop_bind_for_a_while(bind: Bind) -> None:
    """The zones' primary goes away for 10 s: updates are refused, then it comes back as it was."""
    script = str(ROOT / "scripts" / "bind.sh")
    _run(["bash", script, "stop", str(bind.directory)])
    time.sleep(BIND_DOWN_S)
    _run(["bash", script, "resume", str(bind.directory), str(bind.port)])


def restart_api(api: Process, env: dict[str, str], port: int) -> Process:
    """SIGKILL the API mid-request and start it again on the same port; the new process."""
    api.popen.send_signal(signal.SIGKILL)
    api.popen.wait(timeout=10)
    return start_api(api.name, env, port)


def _run(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr or result.stdout}")


Fault = Callable[[], None]


def worker_processes(supervisor: Process) -> list[int]:
    """The Dramatiq worker processes (not their master) under ``supervisor``."""
    master = wait_until(lambda: children(supervisor.popen.pid), timeout=60, what="the Dramatiq master")[0]
    found: list[int] = wait_until(lambda: children(master), timeout=30, what="a Dramatiq worker process")
    return found


def signal_all(pids: list[int], signum: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def bind_pid(bind: Bind) -> int:
    return int((bind.directory / "named.pid").read_text().split()[0])


def holding_a_transaction(database_url: str, pids: list[int]) -> int | None:
    """Which of ``pids`` has a transaction open in PostgreSQL and waits on something else (DNS, say):
    its connection, found by the client port PostgreSQL sees and the sockets each process holds."""
    dsn = database_url.replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(dsn, connect_timeout=5) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT client_port FROM pg_stat_activity WHERE state = 'idle in transaction'"
            " AND application_name = 'hostmaster' AND datname = current_database() AND backend_xid IS NOT NULL"
        )
        ports = {port for (port,) in cursor.fetchall()}
    inodes = {}  # socket inode → local port, from the kernel's table of TCP sockets
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        inodes[fields[9]] = int(fields[1].split(":")[1], 16)
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:[") and inodes.get(target[8:-1]) in ports:
                    return pid
    return None
