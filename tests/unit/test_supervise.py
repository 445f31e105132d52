"""The supervisor (service/cli/supervise.py) ends with a process whose configuration is wrong."""

from __future__ import annotations

import sys
import time

from service.cli.supervise import supervise


def test_an_exit_it_is_told_is_final_ends_the_supervisor_at_once_with_that_code() -> None:
    started = time.monotonic()

    code = supervise([sys.executable, "-c", "raise SystemExit(2)"], name="misconfigured", final=frozenset({2}))

    assert code == 2
    assert time.monotonic() - started < 10  # not started again after a pause
