"""Change sets: every write is a list of operations on RRsets, planned then committed.

``plan`` parses the operations, plays them on a working copy of the desired state,
adds the automatic PTR changes, checks the result against the rules (service.planning.rules) and
the zone's mass-change guard, and returns what would change. ``commit`` writes that plan
in the caller's transaction. A v1 call is a change set of one operation.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from db.models import MAX_TTL, MAX_VALUES, ChangeAction, ChangeStatus, RRset, RRsetStatus, Scope, Zone, utcnow
from db.schemas import ChangeIn, PlannedChange
from db.unnest import columns
from service.core.errors import Conflict, InvalidRequest, NotFound, Violation
from service.dns.names import UNDERSCORE_OWNER_TYPES, BadName, normalize_name, shown
from service.dns.rdata import SUPPORTED_TYPES, BadValue, normalize_value, value_target
from service.dns.validation import zone_for_owner
from service.planning import ptr, rules
from service.planning.desired import Content, DesiredState, Key, Operation
from service.registry.clients import Principal

MIN_RRSETS_FOR_GUARD = 10
LOCK_NOT_AVAILABLE, DEADLOCK_DETECTED = "55P03", "40P01"  # PostgreSQL error codes


@dataclass
class PlanItem:
    zone: Zone
    owner: str
    rtype: str
    action: ChangeAction
    before: Content | None
    after: Content | None
    ptr: bool
    row: RRset | None

    def public(self) -> PlannedChange:
        # Constructed, not validated: every field comes from the plan (a change set may hold 10,000).
        return PlannedChange.model_construct(
            zone=self.zone.name,
            name=self.owner,
            type=self.rtype,
            action=self.action.value,
            before=self.before.public() if self.before else None,
            after=self.after.public() if self.after else None,
        )


def plan(
    session: Session,
    changes: Sequence[ChangeIn],
    *,
    scope: Zone | None,
    field_of: Callable[[int], str],
    force: bool,
    single: bool = False,
    principal: Principal | None = None,
    max_values: int = MAX_VALUES,
    registry: Sequence[Zone] | None = None,
) -> list[PlanItem]:
    """What ``changes`` would do, or InvalidRequest/Conflict/NotFound/Forbidden saying why not.

    ``scope``: the zone of a v2 change set (every owner must be in it); ``single``: a v1
    call, where a missing RRset is a 404 and an existing one a 409. ``registry``: the
    registered zones, when the caller read them already (a batch reads them once).
    """
    zones = list(registry) if registry is not None else list(session.exec(select(Zone)).all())
    operations = parse(changes, zones, scope, field_of, max_values=max_values, principal=principal)
    touched_zones = {op.zone.id: op.zone for op in operations}
    for op in operations:  # the zones of MX, SRV and NS targets, to tell CNAMEs and addresses there
        if op.rtype in rules.TARGET_TYPES:
            for value in op.values:
                target = value_target(op.rtype, value)
                if target is not None and (target_zone := zone_for_owner(target, zones)) is not None:
                    touched_zones[target_zone.id] = target_zone
    if any(op.rtype in ("A", "AAAA") for op in operations):
        touched_zones.update({zone.id: zone for zone in ptr.reverse_zones(zones)})
    state = DesiredState.load(session, touched_zones.values(), registry=zones)
    state.rows.fetch(_names_consulted(operations, zones))  # one query for what the rules will ask about
    if reverse := ptr.names_touched(state, zones, operations):
        # The PTRs and the names above them (an IPv6 one has 24 labels below its zone): one query.
        state.rows.fetch(_up_to_apex(reverse, zones))
    return plan_operations(
        operations, state, field_of=field_of, force=force, single=single, max_values=max_values, principal=principal
    )


def _names_consulted(operations: Sequence[Operation], zones: Sequence[Zone]) -> set[str]:
    """The owner names the rules look at for these operations: each owner and the targets of its
    values, and the names above them up to their zone's apex (delegations)."""
    names: list[str] = []
    for operation in operations:
        targets = (value_target(operation.rtype, value) for value in operation.values)
        names += [operation.owner, *(target for target in targets if target is not None)]
    return _up_to_apex(names, zones)


def _up_to_apex(names: Iterable[str], zones: Sequence[Zone]) -> set[str]:
    """``names`` and the names above each up to its zone's apex, which the rules consult too."""
    found: set[str] = set()
    for name in names:
        zone = zone_for_owner(name, zones)
        labels = name.split(".")
        for cut in range(len(labels) - 1):
            parent = ".".join(labels[cut:])
            found.add(parent)
            if zone is None or parent == zone.name:
                break
    return found


def plan_operations(
    operations: Sequence[Operation],
    state: DesiredState,
    *,
    field_of: Callable[[int], str],
    force: bool,
    single: bool = False,
    max_values: int = MAX_VALUES,
    principal: Principal | None = None,
) -> list[PlanItem]:
    """The plan of parsed operations on a loaded desired state (no database here)."""
    zones = list(state.zones.values())
    violations: list[Violation] = []
    order: dict[Key, None] = {}  # insertion-ordered set
    ptr_wanted: dict[Key, bool] = {}
    for operation in operations:
        key = (operation.owner, operation.rtype)
        order.setdefault(key)
        _play(operation, key, state, violations, single=single)
        if operation.ptr is not None:
            ptr_wanted[key] = operation.ptr
        elif key not in ptr_wanted:
            row = state.stored.get(key)
            ptr_wanted[key] = bool(row and row.ptr)
    if violations:
        raise InvalidRequest(violations)

    ptr_origins = ptr.play(state, zones, list(order), ptr_wanted)
    if principal is not None:  # automatic PTRs touch reverse zones the client must hold too
        reverse = {zone.name for key in ptr_origins if (zone := state.zone_of(key[0])) is not None}
        principal.require(Scope.write, reverse)
    order.update(dict.fromkeys(ptr_origins))
    fields = {(op.owner, op.rtype): op.field for op in operations}
    fields.update({key: f"{fields.get(origin, '')}ptr." for key, origin in ptr_origins.items() if key not in fields})
    rules.check(state, list(order), field_of=lambda key: fields.get(key, ""), max_values=max_values)

    items = _items(state, list(order), ptr_wanted)
    _guard(state, items, force=force or single)  # one RRset is never a mass change
    return items


def parse(
    changes: Sequence[ChangeIn],
    zones: Sequence[Zone],
    scope: Zone | None,
    field_of: Callable[[int], str],
    *,
    max_values: int = MAX_VALUES,
    principal: Principal | None = None,
) -> list[Operation]:
    if principal is not None:  # before any value is parsed, or anything said about zones it may not touch
        principal.require(Scope.write, _zones_named(changes, zones))
    violations: list[Violation] = []
    operations = []
    for index, change in enumerate(changes):
        prefix = field_of(index)
        operation = _parse_one(change, prefix, zones, scope, violations, max_values)
        if operation is not None:
            operations.append(operation)
    if violations:
        raise InvalidRequest(violations)
    return operations


def _zones_named(changes: Sequence[ChangeIn], zones: Sequence[Zone]) -> set[str]:
    """The registered zones the owners of ``changes`` fall in, whatever else is wrong with them."""
    named = set()
    for change in changes:
        try:
            owner = normalize_name(change.name, allow_underscore=True, allow_wildcard=True)
        except BadName:
            continue
        if (zone := zone_for_owner(owner, zones)) is not None:
            named.add(zone.name)
    return named


def _parse_one(
    change: ChangeIn,
    prefix: str,
    zones: Sequence[Zone],
    scope: Zone | None,
    violations: list[Violation],
    max_values: int = MAX_VALUES,
) -> Operation | None:
    found: list[Violation] = []
    rtype = change.type.strip().upper()
    if rtype not in SUPPORTED_TYPES:
        found.append(
            Violation(
                f"{prefix}type", f"{shown(change.type)} is not supported; use one of {', '.join(SUPPORTED_TYPES)}"
            )
        )
    owner = None
    try:
        owner = normalize_name(change.name, allow_underscore=rtype in UNDERSCORE_OWNER_TYPES, allow_wildcard=True)
    except BadName as exc:
        found.append(Violation(f"{prefix}name", f"{shown(change.name)} {exc}"))

    values: list[str] = []
    if change.op == "delete":
        if change.values:
            found.append(Violation(f"{prefix}values", "a delete takes no values; use remove to take some away"))
    elif not change.values:
        found.append(Violation(f"{prefix}values", f"must hold at least one value for {change.op}"))
    elif len(change.values) > max_values:
        found.append(Violation(f"{prefix}values", f"holds {len(change.values)} values; the limit is {max_values}"))
    elif (length := sum(len(raw) for raw in change.values)) > rules.MAX_VALUES_TEXT:
        # Not parsed: no presentation of an RRset that fits in DNS is this long (\ddd is 4 per octet).
        found.append(
            Violation(
                f"{prefix}values",
                f"hold {length} characters; one RRset may take {rules.MAX_RRSET_OCTETS} octets in DNS",
            )
        )
    elif rtype in SUPPORTED_TYPES:
        for index, raw in enumerate(change.values):
            try:
                value = normalize_value(rtype, raw)
            except BadValue as exc:
                found.append(Violation(f"{prefix}values[{index}]", str(exc)))
                continue
            if value in values:
                found.append(
                    Violation(f"{prefix}values[{index}]", f"repeats {shown(value)}; an RRset holds each value once")
                )
                continue
            values.append(value)
    if change.ttl is not None and not 0 <= change.ttl <= MAX_TTL:
        found.append(Violation(f"{prefix}ttl", f"must be between 0 and {MAX_TTL} seconds"))
    if change.ptr and rtype not in ("A", "AAAA"):
        found.append(Violation(f"{prefix}ptr", "automatic PTR records exist for A and AAAA only"))
    if change.ptr and owner is not None and owner.startswith("*."):
        found.append(Violation(f"{prefix}ptr", "a wildcard name cannot be the target of a PTR record"))

    zone = None
    if owner is not None:
        zone = zone_for_owner(owner, zones)
        if zone is None:
            found.append(Violation(f"{prefix}name", f"{owner} is not inside any zone registered with Hostmaster"))
        elif scope is not None and zone.id != scope.id:
            where = (
                f"belongs to the registered zone {zone.name}"
                if zone.name.endswith("." + scope.name)
                else f"is not in zone {scope.name}"
            )
            found.append(Violation(f"{prefix}name", f"{owner} {where}"))
    in_range = change.ttl is not None and 0 <= change.ttl <= MAX_TTL
    if zone is not None and change.ttl is not None and in_range and not zone.min_ttl <= change.ttl <= zone.max_ttl:
        policy = f"{zone.min_ttl} to {zone.max_ttl} seconds"
        found.append(Violation(f"{prefix}ttl", f"{change.ttl} is outside zone {zone.name}'s policy of {policy}"))
    violations.extend(found)
    if found or zone is None or owner is None:
        return None
    return Operation(prefix, change.op, zone, owner, rtype, change.ttl, tuple(values), change.ptr)


def _play(operation: Operation, key: Key, state: DesiredState, violations: list[Violation], *, single: bool) -> None:
    """Apply one operation to the working copy."""
    current = state.get(key)
    name = f"{operation.owner} {operation.rtype}"
    ttl = operation.ttl if operation.ttl is not None else (current.ttl if current else operation.zone.default_ttl)
    if operation.op == "create":
        if current is not None:
            if single or state.is_untouched_stored(key):
                raise Conflict(f"the RRset {name} already exists", code="rrset_exists")
            violations.append(Violation(f"{operation.field}name", f"{name} is created twice in this change set"))
            return
        state.assign(key, Content.of(ttl, operation.values))
    elif operation.op == "upsert":
        state.assign(key, Content.of(ttl, operation.values))
    elif operation.op == "add":
        state.assign(key, Content.of(ttl, (current.values if current else ()) + operation.values))
    elif current is None and operation.op == "delete" and state.is_failed_deletion(key):
        state.assign(key, None)  # the earlier delete failed: try it again
    elif current is None:  # delete, remove
        if single:
            raise NotFound(f"the RRset {name} does not exist", code="rrset_not_found")
        violations.append(Violation(f"{operation.field}name", f"the RRset {name} does not exist"))
    elif operation.op == "delete":
        state.assign(key, None)
    else:  # remove
        missing = [value for value in operation.values if value not in current.values]
        for value in missing:
            violations.append(Violation(f"{operation.field}values", f"{shown(value)} is not a value of {name}"))
        left = [value for value in current.values if value not in operation.values]
        state.assign(key, Content.of(ttl, left) if left else None)


def _items(state: DesiredState, order: Sequence[Key], ptr_wanted: dict[Key, bool]) -> list[PlanItem]:
    items = []
    for key in order:
        row = state.stored.get(key)
        before, after = state.stored_content(key), state.get(key)
        wants_ptr = ptr_wanted.get(key, bool(row and row.ptr))
        if before == after and not _to_redo(row, wants_ptr):
            continue  # nothing to do: already served as asked
        if after is None:
            action = ChangeAction.delete  # also a failed deletion tried again: no before, no after
        else:
            action = ChangeAction.create if before is None else ChangeAction.update
        zone = state.zones.get(row.zone_id) if row else None
        items.append(
            PlanItem(
                zone=zone or _zone_of(key, state),
                owner=key[0],
                rtype=key[1],
                action=action,
                before=before,
                after=after,
                ptr=wants_ptr and after is not None,
                row=row,
            )
        )
    return items


def _to_redo(row: RRset | None, wants_ptr: bool) -> bool:
    """An unchanged RRset is applied (again) unless it is proven served and its PTR wish is the same.

    A pending one is queued once more rather than reported succeeded before it is served.
    """
    if row is None:
        return False
    return row.status != RRsetStatus.active or (bool(row.values) and wants_ptr != row.ptr)


def _zone_of(key: Key, state: DesiredState) -> Zone:
    zone = zone_for_owner(key[0], list(state.zones.values()))
    assert zone is not None  # every key was placed in a zone when parsed
    return zone


def _guard(state: DesiredState, items: Sequence[PlanItem], *, force: bool) -> None:
    """Refuse to delete or rewrite more than the zone's share of its RRsets, unless forced."""
    if force:
        return
    for zone in {item.zone.id: item.zone for item in items}.values():
        existing = state.zone_rrset_count(zone)
        rewritten = sum(1 for item in items if item.zone.id == zone.id and item.action != ChangeAction.create)
        if existing >= MIN_RRSETS_FOR_GUARD and rewritten > existing * zone.mass_change_share:
            raise Conflict(
                f"this change set deletes or rewrites {rewritten} of the {existing} RRsets of zone {zone.name}, "
                f"more than its limit of {zone.mass_change_share:.0%}; send it again with force: true if you mean it",
                code="mass_change_refused",
            )


def rrsets_added(items: Sequence[PlanItem], client: str) -> int:
    """How many RRsets ``items`` add to those ``client`` created (service/registry/quotas.py): the RRsets
    they create, less those of the client's own they delete."""
    created = sum(1 for item in items if item.before is None and item.after is not None)
    freed = sum(
        1
        for item in items
        if item.after is None and item.before is not None and item.row is not None and item.row.created_by == client
    )
    return created - freed


def commit(session: Session, request_id: uuid.UUID, items: Sequence[PlanItem], *, creator: str | None = None) -> None:
    """Write the plan into the desired state and the request's change list (caller commits);
    ``creator``: the client the RRsets it creates count against.

    The stored rows are locked first, in id order as the workers lock them, so a writer and
    a worker never deadlock; a row a worker holds too long is a 409 to send again, not a 503.
    Locked, each must still be at the version the plan read, or another request changed it
    meanwhile (409). Then one statement per kind of row, however many RRsets: the updated
    RRsets, the new ones, the request's changes.
    """
    planned = {item.row.id: item for item in items if item.row is not None and item.row.id is not None}
    try:
        if planned:
            locked = session.execute(
                select(RRset.id, RRset.version)
                .where(col(RRset.id).in_(sorted(planned)))
                .order_by(col(RRset.id))
                .with_for_update()
            ).all()
            versions = {row_id: version for row_id, version in locked}
            for row_id, item in planned.items():
                if item.row is not None and versions.get(row_id) != item.row.version:
                    raise _concurrent(item)
        _write(session, request_id, items, creator)
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) not in (LOCK_NOT_AVAILABLE, DEADLOCK_DETECTED):
            raise
        raise Conflict(
            "the RRsets are being applied by a worker right now; send the change again in a moment",
            code="concurrent_change",
        ) from exc


# One statement per kind of row, its rows as arrays (unnest): compiled once, one round trip
# for 1 or 10,000 RRsets (an executemany UPDATE would be one round trip per row).
_UPDATE_RRSETS = text(
    """
    UPDATE rrset AS r SET "values" = CAST(v."values" AS jsonb), ttl = v.ttl, status = v.status, ptr = v.ptr,
        version = v.version, last_request_id = CAST(:request_id AS uuid), updated_at = :now,
        created_by = CASE WHEN v.created THEN CAST(:creator AS varchar) ELSE r.created_by END
    FROM unnest(CAST(:ids AS int[]), CAST(:versions AS int[]), CAST(:values AS text[]), CAST(:ttls AS int[]),
        CAST(:statuses AS text[]), CAST(:ptrs AS boolean[]), CAST(:createds AS boolean[]))
        AS v(id, version, "values", ttl, status, ptr, created)
    WHERE r.id = v.id
    """
)
_INSERT_RRSETS = text(
    """
    INSERT INTO rrset (zone_id, owner, rtype, ttl, "values", version, status, ptr, last_request_id, updated_at,
        created_by)
    SELECT v.zone_id, v.owner, v.rtype, v.ttl, CAST(v."values" AS jsonb), 1, v.status, v.ptr,
        CAST(:request_id AS uuid), :now, CAST(:creator AS varchar)
    FROM unnest(CAST(:zone_ids AS int[]), CAST(:owners AS text[]), CAST(:rtypes AS text[]), CAST(:ttls AS int[]),
        CAST(:values AS text[]), CAST(:statuses AS text[]), CAST(:ptrs AS boolean[]))
        AS v(zone_id, owner, rtype, ttl, "values", status, ptr)
    """
)
_INSERT_CHANGES = text(
    """
    INSERT INTO request_change (request_id, seq, zone_id, zone, owner, rtype, action, before, after, version, status)
    SELECT CAST(:request_id AS uuid), v.seq, v.zone_id, v.zone, v.owner, v.rtype, v.action, CAST(v.before AS jsonb),
        CAST(v.after AS jsonb), v.version, :pending
    FROM unnest(CAST(:seqs AS int[]), CAST(:zone_ids AS int[]), CAST(:zones AS text[]), CAST(:owners AS text[]),
        CAST(:rtypes AS text[]), CAST(:actions AS text[]), CAST(:befores AS text[]), CAST(:afters AS text[]),
        CAST(:versions AS int[])) AS v(seq, zone_id, zone, owner, rtype, action, before, after, version)
    """
)


_UPDATED = ("ids", "versions", "values", "ttls", "statuses", "ptrs", "createds")
_CREATED = ("zone_ids", "owners", "rtypes", "ttls", "values", "statuses", "ptrs")
_RECORDED = ("seqs", "zone_ids", "zones", "owners", "rtypes", "actions", "befores", "afters", "versions")


def _write(session: Session, request_id: uuid.UUID, items: Sequence[PlanItem], creator: str | None) -> None:
    common = {"request_id": str(request_id), "now": utcnow(), "creator": creator}
    updated: list[tuple[object, ...]] = []  # id, version, values, ttl, status, ptr, created again
    created: list[tuple[object, ...]] = []  # zone id, owner, type, ttl, values, status, ptr
    recorded: list[tuple[object, ...]] = []  # seq, zone id, zone, owner, type, action, before, after, version
    for seq, item in enumerate(items):
        values = json.dumps(list(item.after.values) if item.after else [])
        kept = item.before or item.after
        ttl = kept.ttl if kept else (item.row.ttl if item.row else item.zone.default_ttl)
        ttl = item.after.ttl if item.after else ttl
        status = (RRsetStatus.deleting if item.after is None else RRsetStatus.pending).value
        if item.row is not None:
            version = item.row.version + 1
            created_again = item.before is None and item.after is not None  # it was being deleted
            updated.append((item.row.id, version, values, ttl, status, item.ptr, created_again))
        else:
            version = 1
            created.append((item.zone.id, item.owner, item.rtype, ttl, values, status, item.ptr))
        before = json.dumps(item.before.as_json()) if item.before else None
        after = json.dumps(item.after.as_json()) if item.after else None
        recorded.append(
            (seq, item.zone.id, item.zone.name, item.owner, item.rtype, item.action.value, before, after, version)
        )
    if updated:  # locked and checked by commit(): nobody changed them since the plan read them
        session.execute(_UPDATE_RRSETS, {**common, **columns(updated, *_UPDATED)})
    if created:
        try:
            session.execute(_INSERT_RRSETS, {**common, **columns(created, *_CREATED)})
        except IntegrityError as exc:
            raise _created_meanwhile(items, exc) from exc
    if recorded:
        pending = ChangeStatus.pending.value
        session.execute(_INSERT_CHANGES, {**common, "pending": pending, **columns(recorded, *_RECORDED)})


def _created_meanwhile(items: Sequence[PlanItem], exc: IntegrityError) -> Conflict:
    """The RRset another request created between this plan and its commit, named from PostgreSQL's detail."""
    diag = getattr(exc.orig, "diag", None)
    detail = str(getattr(diag, "message_detail", None) or "")
    for item in items:
        if item.row is None and f"=({item.owner}, {item.rtype})" in detail:
            return _concurrent(item)
    return _concurrent(next(item for item in items if item.row is None))


def _concurrent(item: PlanItem) -> Conflict:
    return Conflict(
        f"the RRset {item.owner} {item.rtype} was changed by another request meanwhile; send yours again",
        code="concurrent_change",
    )
