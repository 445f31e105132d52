"""The console's forms: an urlencoded body read within the size limit, and change-set rows.

A change set is typed as rows of the form (operation, name, type, TTL, values one per line) and
sent on as the same JSON body the v2 API takes, so the console is one more API client.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request

from service.api.common import read_body
from service.core.errors import InvalidRequest, Violation

OPERATIONS = ("upsert", "create", "add", "remove", "delete")
EMPTY_ROWS = 3


async def read_form(request: Request) -> dict[str, list[str]]:
    """The posted form's fields, each with every value it was given."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise InvalidRequest([Violation("body", "post the console's form (application/x-www-form-urlencoded)")])
    body = await read_body(request, request.app.state.settings.max_body_bytes)
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50_000)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest([Violation("body", f"the form cannot be read: {exc}")]) from None


def one(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0]


@dataclass
class Row:
    """One change as typed into the form (text, not yet valid)."""

    op: str = "upsert"
    name: str = ""
    type: str = ""
    ttl: str = ""
    values: str = ""

    @property
    def blank(self) -> bool:
        return not (self.name.strip() or self.type.strip() or self.values.strip() or self.ttl.strip())


def rows_of(form: dict[str, list[str]]) -> list[Row]:
    """The rows of a change-set form, in order (fields named op, name, type, ttl, values, repeated)."""
    columns = [form.get(field, []) for field in ("op", "name", "type", "ttl", "values")]
    count = max((len(column) for column in columns), default=0)
    return [Row(*(column[i] if i < len(column) else "" for column in columns)) for i in range(count)]


class BadRows(Exception):
    """Rows the form itself cannot turn into a change set; ``lines`` say which and why."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


_TTL = re.compile(r"^[0-9]{1,10}$")


def change_set(rows: list[Row], *, dry_run: bool, force: bool) -> tuple[bytes, list[int]]:
    """The v2 body for the rows that are not blank, and each change's row number (from 1).

    BadRows when a TTL is not a number: refused here, before anything is sent or recorded.
    """
    changes: list[dict[str, Any]] = []
    numbers = []
    problems = []
    for number, row in enumerate(rows, start=1):
        if row.blank:
            continue
        change: dict[str, Any] = {"op": row.op.strip(), "name": row.name.strip(), "type": row.type.strip()}
        values = [value.strip() for value in row.values.splitlines() if value.strip()]
        if values or row.op.strip() != "delete":
            change["values"] = values
        ttl = row.ttl.strip()
        if ttl and not _TTL.fullmatch(ttl):
            problems.append(f"row {number}, ttl: {ttl[:20]!r} is not a number of seconds")
        elif ttl:
            change["ttl"] = int(ttl)
        changes.append(change)
        numbers.append(number)
    if problems:
        raise BadRows(problems)
    body = {"changes": changes, "dry_run": dry_run, "force": force}
    return json.dumps(body).encode(), numbers


_CHANGE_FIELD = re.compile(r"^changes\[(\d+)\](?:\.(\w+))?(.*)$")


def explain(violations: list[Violation], numbers: list[int]) -> list[str]:
    """Violations of the v2 body in the form's words: "row 2, values[0]: …"."""
    lines = []
    for violation in violations:
        match = _CHANGE_FIELD.fullmatch(violation.field)
        if match and int(match.group(1)) < len(numbers):
            where = f"row {numbers[int(match.group(1))]}" + (
                f", {match.group(2)}{match.group(3)}" if match.group(2) else ""
            )
        else:
            where = violation.field
        lines.append(f"{where}: {violation.message}")
    return lines
