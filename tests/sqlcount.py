"""Counting what an operation asks of PostgreSQL: statements and commits, by SQLAlchemy's events.

Deterministic, unlike time: a budget test asserts these counts, so a change that adds a round
trip to a hot path fails CI (docs/performance.md lists the budgets).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event


@dataclass
class Count:
    statements: list[str] = field(default_factory=list)  # the SQL text of each, in order
    commits: int = 0

    @property
    def selects(self) -> int:
        return sum(1 for sql in self.statements if sql.lstrip().upper().startswith(("SELECT", "WITH")))

    def __str__(self) -> str:
        lines = "\n".join(f"  {sql.split(chr(10))[0][:160]}" for sql in self.statements)
        return f"{len(self.statements)} statements, {self.commits} commits:\n{lines}"


@contextmanager
def counted(engine: Engine) -> Iterator[Count]:
    """Count every statement and commit ``engine`` sends while the block runs (any thread)."""
    count = Count()

    def on_statement(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        count.statements.append(statement)

    def on_commit(conn: Any) -> None:
        count.commits += 1

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_commit)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "commit", on_commit)
