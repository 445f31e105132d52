"""CPU time by process group, from /proc: where each request's milliseconds go."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(command, parent pid, CPU seconds) of a process; None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    command = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return command, int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def _processes() -> dict[int, tuple[str, int, float]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = stat
    return found


def snapshot(roots: dict[str, int], bind_pid: int | None) -> dict[str, float]:
    """CPU seconds so far of each group: each root's process tree, PostgreSQL, RabbitMQ and BIND."""
    processes = _processes()
    children: dict[int, list[int]] = {}
    for pid, (_, parent, _) in processes.items():
        children.setdefault(parent, []).append(pid)

    def tree(pid: int) -> float:
        return processes.get(pid, ("", 0, 0.0))[2] + sum(tree(child) for child in children.get(pid, []))

    totals = {name: tree(pid) for name, pid in roots.items()}
    totals["postgresql"] = sum(cpu for command, _, cpu in processes.values() if command.startswith("postgres"))
    totals["rabbitmq"] = sum(cpu for command, _, cpu in processes.values() if command == "beam.smp")
    totals["bind"] = processes[bind_pid][2] if bind_pid in processes else 0.0
    return totals


@contextmanager
def measured(roots: dict[str, int], bind_pid: int | None, out: dict[str, float]) -> Iterator[None]:
    """Fill ``out`` with the CPU seconds each group spent inside the block."""
    before = snapshot(roots, bind_pid)
    yield
    after = snapshot(roots, bind_pid)
    out.update({name: after[name] - before.get(name, 0.0) for name in after})
