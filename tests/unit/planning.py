"""Plain factories for planning change sets without a database.

A test builds the stored desired state by hand (``state(rrset(...), ...)``), sends changes
(``change(...)``) through ``changes.parse`` and ``changes.plan_operations`` as the v1 or v2
API would (``plan_v1``, ``plan_v2``), and compares what a user would see (``seen``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import count

import pytest

from db.models import DriftPolicy, RRset, RRsetStatus, Zone
from db.schemas import ChangeIn, Operation
from service.core.errors import InvalidRequest
from service.dns.validation import zone_for_owner
from service.planning import changes, desired
from service.planning.desired import Content, DesiredState

EXAMPLE = "example.test."
SUB = "sub.example.test."
NOWILD = "nowild.test."
REVERSE4 = "2.0.192.in-addr.arpa."  # 192.0.2.0/24
REVERSE6 = "8.b.d.0.1.0.0.2.ip6.arpa."  # 2001:db8::/32

ZONE_IDS = {EXAMPLE: 1, SUB: 2, NOWILD: 3, REVERSE4: 4, REVERSE6: 5}
ALL_ZONES = tuple(ZONE_IDS)

_row_ids = count(1000)

# What a user sees of one planned change: owner, type, action, before, after.
Seen = tuple[str, str, str, Content | None, Content | None]


def zone(
    name: str,
    *,
    min_ttl: int = 60,
    max_ttl: int = 86400,
    default_ttl: int = 3600,
    mass_change_share: float = 0.3,
    allow_wildcards: bool | None = None,
) -> Zone:
    """A registered zone with the policy of example.test unless told otherwise (nowild.test: no wildcards)."""
    return Zone(
        id=ZONE_IDS.get(name, 99),
        name=name,
        primary_host="192.0.2.53",
        primary_port=53,
        tsig_key_name="hostmaster-key",
        min_ttl=min_ttl,
        max_ttl=max_ttl,
        default_ttl=default_ttl,
        mass_change_share=mass_change_share,
        allow_wildcards=name != NOWILD if allow_wildcards is None else allow_wildcards,
        drift_policy=DriftPolicy.fail,
    )


def zones(*names: str) -> dict[int, Zone]:
    """The registered zones by id: every standard zone unless ``names`` picks some."""
    registered = [zone(name) for name in (names or ALL_ZONES)]
    return {z.id: z for z in registered if z.id is not None}


def rrset(
    owner: str,
    rtype: str,
    values: Sequence[str],
    *,
    ttl: int = 3600,
    status: str = RRsetStatus.active,
    ptr: bool = False,
    version: int = 1,
    zone_id: int | None = None,
) -> RRset:
    """A stored RRset row; ``values=[]`` is a tombstone (a deletion not yet applied)."""
    if zone_id is None:
        found = zone_for_owner(owner, list(zones().values()))
        assert found is not None, f"{owner} is in no standard zone"
        assert found.id is not None
        zone_id = found.id
    applied = {"ttl": ttl, "values": list(values)} if status == RRsetStatus.active else None
    return RRset(
        id=next(_row_ids),
        zone_id=zone_id,
        owner=owner,
        rtype=rtype,
        ttl=ttl,
        values=list(values),
        version=version,
        status=status,
        ptr=ptr,
        applied=applied,
    )


def state(*rows: RRset, registered: dict[int, Zone] | None = None) -> DesiredState:
    """The desired state of ``registered`` zones (every standard zone by default) holding ``rows``.

    The registry holds every standard zone, as plan() gives it every registered zone.
    """
    return DesiredState(
        zones=registered if registered is not None else zones(),
        stored={(row.owner, row.rtype): row for row in rows},
        registry=list(zones().values()),
    )


def change(
    op: Operation,
    name: str,
    rtype: str,
    values: list[str] | None = None,
    *,
    ttl: int | None = None,
    ptr: bool | None = None,
) -> ChangeIn:
    return ChangeIn(op=op, name=name, type=rtype, values=values, ttl=ttl, ptr=ptr)


def content(ttl: int, *values: str) -> Content:
    return Content.of(ttl, values)


def scope_zone(desired: DesiredState, name: str | None) -> Zone | None:
    if name is None:
        return None
    return next(z for z in desired.zones.values() if z.name == name)


def v2_field(index: int) -> str:
    return f"changes[{index}]."


def v1_field(index: int) -> str:
    return ""


def plan_v2(
    desired: DesiredState, *sent: ChangeIn, scope: str | None = EXAMPLE, force: bool = False
) -> list[changes.PlanItem]:
    """Plan a v2 change set on the zone ``scope``, as POST /api/v2/zones/{zone}/changes does."""
    registered = list(desired.zones.values())
    operations = changes.parse(list(sent), registered, scope_zone(desired, scope), v2_field)
    return changes.plan_operations(operations, desired, field_of=v2_field, force=force)


def plan_v1(desired: DesiredState, sent: ChangeIn) -> list[changes.PlanItem]:
    """Plan a v1 call: one operation, no zone scope, 404 when missing and 409 when it exists."""
    operations = changes.parse([sent], list(desired.zones.values()), None, v1_field)
    return changes.plan_operations(operations, desired, field_of=v1_field, force=False, single=True)


def parse_v2(*sent: ChangeIn, scope: str | None = EXAMPLE) -> list[desired.Operation]:
    desired = state()
    return changes.parse(list(sent), list(desired.zones.values()), scope_zone(desired, scope), v2_field)


def seen(items: Iterable[changes.PlanItem]) -> list[Seen]:
    return [(item.owner, item.rtype, item.action.value, item.before, item.after) for item in items]


def violations_of(error: pytest.ExceptionInfo[InvalidRequest]) -> list[tuple[str, str]]:
    return [(violation.field, violation.message) for violation in error.value.violations]


def assert_violations(error: pytest.ExceptionInfo[InvalidRequest], expected: Sequence[tuple[str, str]]) -> None:
    """The violations are exactly ``expected`` fields, in order, each message holding its key word."""
    found = violations_of(error)
    assert [field for field, _ in found] == [field for field, _ in expected], found
    for (_, message), (_, word) in zip(found, expected, strict=True):
        assert word in message, (word, message)
