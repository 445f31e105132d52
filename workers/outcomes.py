"""What a pass concluded for each request it claimed: its steps, its status, its changes' and RRsets' ends.

Nothing here talks to PostgreSQL or DNS: the rows go into a ``settle.Outcome``, written at once.
A request whose zone failed transiently is left out entirely (released for its own message),
unless it is the message's own, whose attempt failed: retrying, or failed on its last attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from db.models import ChangeAction, ChangeStatus, RequestStatus, RRsetStatus, Step
from service.core.errors import TransientDnsError
from service.requests import tracker
from workers import settle
from workers.batch import Attempt, Change, Pass, ZoneResult
from workers.claim import Member

COMPONENT = "worker"

Settled = dict[int, tuple[str, str | None, str | None]]  # change id → status, code, detail


def conclude(
    work: Pass, attempt: Attempt, results: dict[int, ZoneResult], failed_zones: dict[int, TransientDnsError]
) -> tuple[settle.Outcome, TransientDnsError | None]:
    """Every row the pass settles, and the transient failure of the message's own request, if any."""
    outcome = settle.Outcome()
    settled: dict[int, tuple[str, str | None, str | None]] = {}  # change id → status, code, detail
    for zone_id, result in results.items():
        for key in result.keys:
            row = work.rows.get(key)
            failure = result.failures.get(key)
            if row is None:
                continue
            if failure is not None:
                outcome.rrsets[row.id] = (RRsetStatus.error, None)
            elif row.values:
                applied = {"ttl": row.ttl, "values": list(row.values), "version": row.version}
                outcome.rrsets[row.id] = (RRsetStatus.active, applied)
            else:
                outcome.deleted.add(row.id)  # deleted and proven gone
        for change in work.pending(zone_id):
            failure = result.failures.get(change.key)
            if failure is not None:
                settled[change.id] = (ChangeStatus.failed, failure.code, failure.detail)
                continue
            row = work.rows.get(change.key)
            # A later request changed it (a higher version), or deleted it and saw it gone before
            # this pass: what is served is that request's, not this one's.
            gone = row is None and change.action != ChangeAction.delete
            superseded = gone or (row is not None and row.version > change.version)
            settled[change.id] = (ChangeStatus.superseded if superseded else ChangeStatus.succeeded, None, None)

    for change in work.pending():
        if change.zone_id not in work.zones and change.zone_id not in failed_zones:
            settled[change.id] = (ChangeStatus.failed, "zone_unregistered", "its zone is no longer registered")
    error: TransientDnsError | None = None
    batch = len(work.claimed.members)
    for member in work.claimed.members:
        own = [change for change in work.changes if change.request_id == member.request_id]
        zones = sorted({change.zone_id for change in own if change.status == "pending" and change.zone_id is not None})
        failed = next((failed_zones[zone] for zone in zones if zone in failed_zones), None)
        if failed is not None and not member.leader:
            continue  # released untouched: its own message applies it
        events = _steps(work, member, batch, [results[zone] for zone in zones if zone in results], own)
        if failed is None:
            _end(outcome, member, own, settled, events)
        else:
            _attempt_failed(
                outcome, work, member, attempt, failed, [zone for zone in zones if zone in failed_zones], events
            )
            error = failed
        outcome.events.extend(events)
    for change_id, (status, code, detail) in settled.items():
        outcome.change(change_id, status, code, detail)
    return outcome, error


def _steps(
    work: Pass, member: Member, batch: int, results: Sequence[ZoneResult], own: Sequence[Change]
) -> list[tracker.EventRow]:
    """The member's started, and per zone applied its dns_sent and dns_verified (each at its time)."""
    detail: dict[str, Any] = {"attempt": member.attempt, "batch": batch}
    if not member.leader:
        detail["led_by"] = str(work.claimed.leader.request_id)
    events = [
        _at(tracker.event(member.request_id, Step.started, COMPONENT, client=member.client, **detail), work.started_at)
    ]
    for result in results:
        mine = [change for change in own if change.zone_id == result.zone.id and change.status == "pending"]
        failed = sum(1 for change in mine if change.key in result.failures)
        server = f"{result.zone.primary_host}:{result.zone.primary_port}"
        sent = tracker.event(
            member.request_id,
            Step.dns_sent,
            COMPONENT,
            client=member.client,
            zone=result.zone.name,
            server=server,
            messages=result.messages,
            rrsets=len(mine),
            batch=result.requests,
            batch_rrsets=len(result.keys),
            ms=result.ms,
        )
        verified = tracker.event(
            member.request_id,
            Step.dns_verified,
            COMPONENT,
            client=member.client,
            zone=result.zone.name,
            verified=len(mine) - failed,
            failed=failed,
            by=result.verified_by,
        )
        events += [_at(sent, result.sent_at), _at(verified, result.verified_at)]
    return events


def _end(
    outcome: settle.Outcome,
    member: Member,
    own: Sequence[Change],
    settled: dict[int, tuple[str, str | None, str | None]],
    events: list[tracker.EventRow],
) -> None:
    """Every change of the request is settled: it succeeded, or failed naming its first failed change."""
    ends = {
        change.id: settled.get(change.id, (change.status, change.error_code, change.error_detail)) for change in own
    }
    failures = sorted((change for change in own if ends[change.id][0] == ChangeStatus.failed), key=lambda c: c.seq)
    if not failures:
        outcome.request(member.request_id, RequestStatus.succeeded, member.attempt)
        events.append(
            tracker.event(member.request_id, Step.succeeded, COMPONENT, client=member.client, attempts=member.attempt)
        )
        return
    first = failures[0]
    _, code, reason = ends[first.id]
    detail = reason or code or "failed"
    if len(own) > 1:
        detail = f"{len(failures)} of {len(own)} changes failed; first {first.owner} {first.rtype}: {detail}"
    _fail(outcome, member, code or "failed", detail, events)


def _attempt_failed(
    outcome: settle.Outcome,
    work: Pass,
    member: Member,
    attempt: Attempt,
    error: TransientDnsError,
    zones: Sequence[int],
    events: list[tracker.EventRow],
) -> None:
    """The message's own request failed transiently: retrying, or on its last attempt dead-lettered and failed."""
    code, reason, request_id, client = error.code, error.detail, member.request_id, member.client
    if not attempt.final:
        outcome.request(request_id, RequestStatus.retrying, member.attempt, code, reason)
        events.append(
            tracker.event(
                request_id,
                Step.retry_scheduled,
                COMPONENT,
                client=client,
                code=code,
                reason=reason,
                attempt=member.attempt,
                next_attempt=member.attempt + 1,
            )
        )
        return
    events.append(tracker.event(request_id, Step.dead_lettered, COMPONENT, client=client, code=code, reason=reason))
    for change in work.changes:
        if change.request_id == request_id and change.zone_id in zones and change.status == ChangeStatus.pending:
            outcome.change(change.id, ChangeStatus.failed, "retries_exhausted", reason)
            if (row := work.rows.get(change.key)) is not None:
                outcome.rrsets[row.id] = (RRsetStatus.error, None)
    _fail(outcome, member, "retries_exhausted", f"gave up after {member.attempt} attempts: {reason}", events)


def _fail(outcome: settle.Outcome, member: Member, code: str, detail: str, events: list[tracker.EventRow]) -> None:
    outcome.request(member.request_id, RequestStatus.failed, member.attempt, code, detail)
    events.append(
        tracker.event(member.request_id, Step.failed, COMPONENT, client=member.client, code=code, reason=detail)
    )


def _at(event: tracker.EventRow, at: datetime) -> tracker.EventRow:
    event["at"] = at
    return event
