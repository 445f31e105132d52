"""Rows as arrays, one per column: the parameters of a statement that reads them with ``unnest()``.

A multi-row statement written this way is compiled once and sent in one round trip for one
row or ten thousand (service/requests/tracker.py, service/planning/changes.py, workers/settle.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def columns(rows: Sequence[Sequence[Any]], *names: str) -> dict[str, list[Any]]:
    """``{name: [row[i] for row in rows]}`` for the i-th of ``names``."""
    return {name: [row[index] for row in rows] for index, name in enumerate(names)}
