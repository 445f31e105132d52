"""Prints the fault-injection table at the end of the run."""

from __future__ import annotations

from typing import Any

from tests.faults.test_faults import ROWS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    write = terminalreporter.write_line
    write("")
    columns = "scenario | requests sent | succeeded | failed (by reason) | lost | time to drain"
    write(f"| {columns} | reached by the fault | Kafka results twice |")
    write("|---|---:|---:|---|---:|---:|---:|---:|")
    for row in ROWS:
        failed = ", ".join(f"{reason}: {count}" for reason, count in row.failed.items()) or "0"
        drain = f"{row.drain_s:.1f} s"
        cells = [row.scenario, row.sent, row.succeeded, failed, row.lost, drain, row.disturbed, row.results_twice]
        write("| " + " | ".join(str(cell) for cell in cells) + " |")
