"""Shared pieces of validation: where a name belongs, and violations from pydantic errors.

The rules themselves live where they apply: names in service.dns.names, values in
service.dns.rdata, operations in service.planning.changes, the resulting state in service.planning.rules.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from db.models import Zone
from service.core.errors import Violation
from service.dns.names import is_within


def zone_for_owner(owner: str, zones: Sequence[Zone]) -> Zone | None:
    """The registered zone closest to ``owner`` (the longest matching suffix)."""
    matches = [zone for zone in zones if is_within(owner, zone.name)]
    return max(matches, key=lambda zone: len(zone.name), default=None)


def violations_from_pydantic(exc: ValidationError) -> list[Violation]:
    return [
        Violation(field_path(error["loc"]), error["msg"])
        for error in exc.errors(include_url=False, include_input=False)
    ]


def field_path(location: Sequence[int | str]) -> str:
    """A JSON path as the violations name it: ``values[1]``, ``zone.name``, or ``body``."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"
