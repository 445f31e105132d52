"""The desired state of the zones a change set touches, as a change set sees it.

``DesiredState`` holds the RRsets of those zones as stored, and the changes made to a
working copy while a change set is planned; nothing here writes to the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from db.models import RRset, RRsetStatus, Zone
from db.schemas import RRsetContent
from service.validation import zone_for_owner

Key = tuple[str, str]  # (owner, type)


@dataclass(frozen=True)
class Content:
    """What an RRset holds: its TTL and its normalised values (sorted, none twice)."""

    ttl: int
    values: tuple[str, ...]

    @classmethod
    def of(cls, ttl: int, values: Iterable[str]) -> Content:
        return cls(ttl, tuple(sorted(set(values))))

    def public(self) -> RRsetContent:
        return RRsetContent(ttl=self.ttl, values=list(self.values))

    def as_json(self) -> dict[str, object]:
        return {"ttl": self.ttl, "values": list(self.values)}


@dataclass
class DesiredState:
    zones: dict[int, Zone]  # the zones whose RRsets are loaded
    stored: dict[Key, RRset]
    changed: dict[Key, Content | None] = field(default_factory=dict)
    registry: list[Zone] = field(default_factory=list)  # every registered zone
    _owners: dict[str, set[str]] | None = field(default=None, repr=False)

    @classmethod
    def load(cls, session: Session, zones: Iterable[Zone], registry: Iterable[Zone] = ()) -> DesiredState:
        by_id = {zone.id: zone for zone in zones if zone.id is not None}
        rows = session.exec(select(RRset).where(col(RRset.zone_id).in_(list(by_id)))).all()
        return cls(zones=by_id, stored={(row.owner, row.rtype): row for row in rows}, registry=list(registry))

    def zone_of(self, name: str) -> Zone | None:
        """The registered zone holding ``name`` (among all, when the registry is known)."""
        return zone_for_owner(name, self.registry or list(self.zones.values()))

    def stored_content(self, key: Key) -> Content | None:
        row = self.stored.get(key)
        if row is None or not row.values:
            return None
        return Content.of(row.ttl, row.values)

    def get(self, key: Key) -> Content | None:
        if key in self.changed:
            return self.changed[key]
        return self.stored_content(key)

    def assign(self, key: Key, content: Content | None) -> None:
        self.changed[key] = content
        self._types_by_owner().setdefault(key[0], set()).add(key[1])

    def types_at(self, owner: str) -> dict[str, Content]:
        rtypes = self._types_by_owner().get(owner, set())
        return {rtype: content for rtype in rtypes if (content := self.get((owner, rtype))) is not None}

    def _types_by_owner(self) -> dict[str, set[str]]:
        if self._owners is None:
            self._owners = {}
            for owner, rtype in self.stored:
                self._owners.setdefault(owner, set()).add(rtype)
        return self._owners

    def present(self) -> Iterator[tuple[Key, Content]]:
        """Every RRset that exists in the working copy."""
        for key in self.stored.keys() | self.changed.keys():
            content = self.get(key)
            if content is not None:
                yield key, content

    def is_untouched_stored(self, key: Key) -> bool:
        return key not in self.changed and self.stored_content(key) is not None

    def zone_rrset_count(self, zone: Zone) -> int:
        return sum(1 for row in self.stored.values() if row.zone_id == zone.id and row.values)

    def is_failed_deletion(self, key: Key) -> bool:
        row = self.stored.get(key)
        return row is not None and not row.values and row.status == RRsetStatus.error
