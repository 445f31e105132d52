"""Quotas: how many RRsets a client may have created, and how many changes it may make in a day.

Each client has two limits: its own, set by an admin, or else the service's default
(``HOSTMASTER_QUOTA_RRSETS``, ``HOSTMASTER_QUOTA_CHANGES_PER_DAY``). Admins have none. A write
over either is refused with 403 ``quota_exceeded`` and changes nothing.

- **Changes per day** count every change a client's accepted writes hold (automatic PTRs
  included) in one UTC day; the count starts again at 00:00 UTC. Rejected writes and dry runs
  count nothing.
- **RRsets** count the RRsets the client created that exist (a delete frees its place once
  planned, whoever deletes it). Only a write that adds RRsets to the client's count is checked
  against it: one that replaces, or deletes more than it creates, passes even over the limit,
  so lowering a quota never stops a team from cleaning up.

Both are checked in the write's own transaction, before its plan is written: one UPDATE of
the client's row adds the write's changes to the day's count and returns it — its row lock
orders a client's concurrent writes, so two cannot both take the last place — and, only when
the write adds RRsets, a count of the client's RRsets, read after that lock (a new snapshot
under READ COMMITTED: it sees what the client's other writes committed while it waited).
A rollback undoes the UPDATE with the rest: nothing is counted for a refused write. Many
writes of one client in one transaction (a batch, a group of v1 writes, Kafka's calls) count
its RRsets once, in a ``Tally``: the row lock keeps every other transaction of the client out
until the commit, so the first count plus what each write adds stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, text
from sqlmodel import Session, select

from db.models import CREATED_AND_EXISTING, ApiClient, RRset
from service.core.errors import Forbidden
from service.core.settings import Settings


@dataclass(frozen=True)
class Quota:
    """A client's limits; None is no limit."""

    rrsets: int | None = None
    changes_per_day: int | None = None

    @property
    def limited(self) -> bool:
        return self.rrsets is not None or self.changes_per_day is not None

    def of(self, client: ApiClient) -> Quota:
        """The limits of ``client``: its own where set, else these (the service's defaults)."""
        return Quota(
            rrsets=client.max_rrsets if client.max_rrsets is not None else self.rrsets,
            changes_per_day=client.max_changes_per_day
            if client.max_changes_per_day is not None
            else self.changes_per_day,
        )


NO_LIMIT = Quota()


def defaults(settings: Settings) -> Quota:
    """The service's quotas, for a client that has none of its own."""
    return Quota(rrsets=settings.quota_rrsets, changes_per_day=settings.quota_changes_per_day)


class QuotaExceeded(Forbidden):
    code = "quota_exceeded"


@dataclass
class Tally:
    """The RRsets a transaction counted for its client: read at its first write that adds some,
    then kept up to date by the writes after it (one count per transaction, not per write)."""

    rrsets: int | None = None


@dataclass(frozen=True)
class Usage:
    """What a client uses of its quota now."""

    rrsets: int
    changes_today: int
    resets_at: datetime  # the next 00:00 UTC


_COUNT_CHANGES = text(
    """
    UPDATE api_client
    SET changes_on_day = CASE WHEN usage_day = :today THEN changes_on_day ELSE 0 END + :changes, usage_day = :today
    WHERE name = :name
    RETURNING changes_on_day
    """
)


def charge(
    session: Session, client: str, quota: Quota, *, changes: int, added: int, tally: Tally | None = None
) -> None:
    """Count a write of ``changes`` changes that adds ``added`` RRsets to the client's count
    (creates minus deletes of its own) against ``quota``, in the caller's transaction;
    QuotaExceeded, counting nothing once rolled back, when it passes a limit. ``tally``: what
    this transaction counted already (the caller restores it when it rolls a write back)."""
    if not quota.limited or changes == 0:
        return
    now = datetime.now(UTC)
    today = now.date()
    counted = session.execute(_COUNT_CHANGES, {"today": today, "changes": changes, "name": client}).scalar()
    if counted is None:  # no such client row (the CLI's operator): nothing to count against
        return
    if quota.changes_per_day is not None and counted > quota.changes_per_day:
        made = counted - changes
        resets_at = _next_midnight(today)
        raise QuotaExceeded(
            f"client {client} may make {quota.changes_per_day} changes a day and has made {made} today; "
            f"this write holds {changes}. The count starts again at 00:00 UTC, or an admin can raise the quota",
            retry_after_s=max(1, int((resets_at - now).total_seconds()) + 1),
        )
    if quota.rrsets is None:
        return
    if added > 0 or (tally is not None and tally.rrsets is not None):
        held = tally.rrsets if tally is not None and tally.rrsets is not None else rrsets_of(session, client)
        if added > 0 and held + added > quota.rrsets:
            raise QuotaExceeded(
                f"client {client} may have {quota.rrsets} RRsets and has {held}; this write adds {added}. "
                "Delete some, or ask an admin to raise the quota"
            )
        if tally is not None:
            tally.rrsets = held + added


def rrsets_of(session: Session, client: str) -> int:
    """The RRsets ``client`` created that exist in the desired state (not being deleted)."""
    # The partial index's own predicate, as text, so that the count is read from the index alone.
    statement = select(func.count()).select_from(RRset).where(RRset.created_by == client, text(CREATED_AND_EXISTING))
    return int(session.exec(statement).one())


def usage_of(session: Session, client: ApiClient) -> Usage:
    today = datetime.now(UTC).date()
    return Usage(
        rrsets=rrsets_of(session, client.name),
        changes_today=client.changes_on_day if client.usage_day == today else 0,
        resets_at=_next_midnight(today),
    )


def _next_midnight(today: date) -> datetime:
    return datetime.combine(today + timedelta(days=1), time(), tzinfo=UTC)
