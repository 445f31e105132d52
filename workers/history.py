"""What an RRset may serve without Hostmaster having seen it land: the states sent since the last one that did.

An UPDATE whose answer was lost (the primary or the worker died in the middle, the database
went away before the outcome was committed) still took effect on the server. After a failed
prerequisite, finding one of those states served is not drift (workers/updates.py).

The read is bounded, not the RRset's whole history: only changes newer than the version last
proven served (``rrset.applied["version"]``, written when a state is seen to land), of the
RRset's current life (from its latest version 1: a deleted and re-created RRset starts again),
and not settled (pending, or failed: a failed attempt may still have landed). Index:
``ix_request_change_rrset_version``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

Key = tuple[str, str]
States = tuple[tuple[str, ...], ...]

_SINCE = text(
    """
    SELECT k.owner, k.rtype, c.after
    FROM unnest(CAST(:owners AS text[]), CAST(:rtypes AS text[]), CAST(:versions AS int[])) AS k(owner, rtype, applied)
    JOIN request_change c ON c.owner = k.owner AND c.rtype = k.rtype AND c.version > k.applied
    WHERE c.status IN ('pending', 'failed')
      AND c.id >= COALESCE(
        (SELECT max(f.id) FROM request_change f WHERE f.owner = k.owner AND f.rtype = k.rtype AND f.version = 1), 0)
    ORDER BY c.id
    """
)


def applied_version(applied: Mapping[str, Any] | None) -> int:
    """The version of the state last proven served (0: none, or proven before versions were kept)."""
    return int(applied.get("version", 0)) if applied else 0


def unconfirmed(session: Session, keys: Sequence[Key], versions: Mapping[Key, int]) -> dict[Key, States]:
    """Per RRset of ``keys``, the states its changes asked for since the version last proven served."""
    if not keys:
        return {}
    rows = session.execute(
        _SINCE,
        {
            "owners": [owner for owner, _ in keys],
            "rtypes": [rtype for _, rtype in keys],
            "versions": [versions.get(key, 0) for key in keys],
        },
    ).all()
    found: dict[Key, list[tuple[str, ...]]] = {key: [] for key in keys}
    for owner, rtype, after in rows:
        found[(owner, rtype)].append(tuple(after["values"]) if after else ())
    return {key: tuple(states) for key, states in found.items()}
