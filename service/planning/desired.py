"""The desired state of the zones a change set touches, as a change set sees it.

``DesiredState`` holds the RRsets of those zones as stored, and the changes made to a
working copy while a change set is planned; nothing here writes to the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from sqlmodel import Session, col, func, select

from db.models import RRset, RRsetStatus, Zone
from db.schemas import RRsetContent
from service.dns.validation import zone_for_owner

Key = tuple[str, str]  # (owner, type)


@dataclass(frozen=True)
class Operation:
    """One operation of a change set, parsed: what it asks of the desired state."""

    field: str  # where the operation sits in the body, for violations: "changes[3]." or ""
    op: str
    zone: Zone
    owner: str
    rtype: str
    ttl: int | None
    values: tuple[str, ...]
    ptr: bool | None


@dataclass(frozen=True)
class Content:
    """What an RRset holds: its TTL and its normalised values (sorted, none twice)."""

    ttl: int
    values: tuple[str, ...]

    @classmethod
    def of(cls, ttl: int, values: Iterable[str]) -> Content:
        return cls(ttl, tuple(sorted(set(values))))

    def public(self) -> RRsetContent:
        return RRsetContent.model_construct(ttl=self.ttl, values=list(self.values))  # normalised already

    def as_json(self) -> dict[str, object]:
        return {"ttl": self.ttl, "values": list(self.values)}


class StoredRRsets(Mapping[Key, RRset]):
    """The stored RRsets a change set may consult: given all at once (``rows``), or read from
    ``session`` an owner name (or a type) at a time, the first time one is asked for.

    A write touches a few names of a zone that may hold a million; reading only those keeps
    planning as cheap in a big zone as in an empty one. Rows are read as they are now, even
    when the session holds them already (``populate_existing``): the writes of a batch share
    one session, and each must see what the ones before it wrote with Core statements.
    """

    def __init__(self, rows: dict[Key, RRset], session: Session | None = None, zone_ids: Iterable[int] = ()) -> None:
        self._rows = rows
        self._session = session
        self._zone_ids = sorted(zone_ids)
        self._owners: set[str] = set()  # owner names read already
        self._types: set[str] = set()  # types read already, every owner of them
        self._by_owner: dict[str, set[str]] = {}
        for owner, rtype in rows:
            self._by_owner.setdefault(owner, set()).add(rtype)

    @property
    def complete(self) -> bool:
        """Every stored RRset of the zones is here (nothing is read on demand)."""
        return self._session is None

    def fetch(self, owners: Iterable[str]) -> None:
        """Read the RRsets of ``owners`` not read yet, in one query."""
        wanted = set(owners) - self._owners
        if self._session is None or not wanted:
            return
        self._owners |= wanted
        self._add(
            self._session.exec(
                select(RRset)
                .where(col(RRset.zone_id).in_(self._zone_ids), col(RRset.owner).in_(sorted(wanted)))
                .execution_options(populate_existing=True)
            ).all()
        )

    def fetch_types(self, rtypes: Iterable[str]) -> None:
        """Read every RRset of ``rtypes`` (MX, SRV and NS, to know what points at a name)."""
        wanted = set(rtypes) - self._types
        if self._session is None or not wanted:
            return
        self._types |= wanted
        self._add(
            self._session.exec(
                select(RRset)
                .where(col(RRset.zone_id).in_(self._zone_ids), col(RRset.rtype).in_(sorted(wanted)))
                .execution_options(populate_existing=True)
            ).all()
        )

    def types_at(self, owner: str) -> set[str]:
        self.fetch([owner])
        return self._by_owner.get(owner, set())

    def count(self, zone: Zone) -> int:
        """RRsets with values in ``zone``."""
        if self._session is None:
            return sum(1 for row in self._rows.values() if row.zone_id == zone.id and row.values)
        statement = select(func.count()).select_from(RRset).where(RRset.zone_id == zone.id, RRset.values != [])
        return int(self._session.exec(statement).one())

    def __getitem__(self, key: Key) -> RRset:
        self.fetch([key[0]])
        return self._rows[key]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        self.fetch([key[0]])
        return key in self._rows

    def __iter__(self) -> Iterator[Key]:
        return iter(self._rows)  # those read so far

    def __len__(self) -> int:
        return len(self._rows)

    def _add(self, rows: Iterable[RRset]) -> None:
        for row in rows:
            self._rows[(row.owner, row.rtype)] = row
            self._by_owner.setdefault(row.owner, set()).add(row.rtype)


@dataclass
class DesiredState:
    zones: dict[int, Zone]  # the zones whose RRsets may be consulted
    stored: Mapping[Key, RRset]
    changed: dict[Key, Content | None] = field(default_factory=dict)
    registry: list[Zone] = field(default_factory=list)  # every registered zone
    _changed_types: dict[str, set[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.stored, StoredRRsets):
            self.stored = StoredRRsets(dict(self.stored))

    @classmethod
    def load(cls, session: Session, zones: Iterable[Zone], registry: Iterable[Zone] = ()) -> DesiredState:
        """The desired state of ``zones``, read from ``session`` as planning asks for it."""
        by_id = {zone.id: zone for zone in zones if zone.id is not None}
        return cls(zones=by_id, stored=StoredRRsets({}, session, by_id), registry=list(registry))

    @property
    def rows(self) -> StoredRRsets:
        assert isinstance(self.stored, StoredRRsets)
        return self.stored

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
        self._changed_types.setdefault(key[0], set()).add(key[1])

    def types_at(self, owner: str) -> dict[str, Content]:
        rtypes = self.rows.types_at(owner) | self._changed_types.get(owner, set())
        return {rtype: content for rtype in rtypes if (content := self.get((owner, rtype))) is not None}

    def present(self, rtypes: Iterable[str]) -> Iterator[tuple[Key, Content]]:
        """Every RRset of ``rtypes`` that exists in the working copy."""
        wanted = set(rtypes)
        self.rows.fetch_types(wanted)
        for key in {key for key in self.stored if key[1] in wanted} | {key for key in self.changed if key[1] in wanted}:
            content = self.get(key)
            if content is not None:
                yield key, content

    def is_untouched_stored(self, key: Key) -> bool:
        return key not in self.changed and self.stored_content(key) is not None

    def zone_rrset_count(self, zone: Zone) -> int:
        return self.rows.count(zone)

    def is_failed_deletion(self, key: Key) -> bool:
        row = self.stored.get(key)
        return row is not None and not row.values and row.status == RRsetStatus.error
