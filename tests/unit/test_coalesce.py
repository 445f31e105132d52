"""Claiming a batch: who joins, which messages are overtaken, whose name the events carry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from db.models import Request, RequestStatus
from service.context import current_client, current_request_id
from workers.coalesce import (
    Batch,
    Candidate,
    Member,
    lock_key,
    on_behalf_of,
    publishes,
    superseded,
    within_budget,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def request(status: RequestStatus, attempts: int, updated_at: datetime = NOW) -> Request:
    return Request(operation="record.create", status=status, attempts=attempts, updated_at=updated_at)


def candidate(pending: int) -> Candidate:
    return Candidate(uuid.uuid4(), "client", 0, pending)


def test_a_message_older_than_the_retry_a_batch_sent_is_superseded() -> None:
    retrying = request(RequestStatus.retrying, attempts=1)  # its attempt in another's batch failed

    assert superseded(retrying, retries=0, sent_at=NOW - timedelta(seconds=5))  # its first message, still queued
    assert not superseded(retrying, retries=1, sent_at=NOW - timedelta(seconds=5))  # the retry's own message


def test_the_messages_of_dramatiq_the_recovery_job_and_a_redrive_are_not_superseded() -> None:
    retrying = request(RequestStatus.retrying, attempts=2)

    assert not superseded(retrying, retries=2, sent_at=NOW - timedelta(minutes=1))  # Dramatiq's retry: same count
    assert not superseded(retrying, retries=0, sent_at=NOW + timedelta(seconds=1))  # the recovery job's, sent since
    assert not superseded(request(RequestStatus.queued, attempts=3), retries=0, sent_at=NOW - timedelta(minutes=1))
    assert not superseded(retrying, retries=0, sent_at=None)


def test_candidates_join_oldest_first_while_their_changes_fit() -> None:
    small, large, later = candidate(10), candidate(400), candidate(50)

    assert within_budget([small, large, later], 100) == [small, later]  # the large one leads its own batch
    assert within_budget([small, large, later], 1000) == [small, large, later]
    assert within_budget([small], -5) == []  # the leader alone fills the batch


def test_the_lock_key_is_a_signed_64_bit_number_fixed_by_the_id() -> None:
    request_id = uuid.UUID("ffffffff-ffff-ffff-0000-000000000001")  # the first 64 bits all ones

    assert lock_key(request_id) == lock_key(uuid.UUID(str(request_id))) == -1
    keys = {lock_key(uuid.uuid4()) for _ in range(1000)}
    assert len(keys) == 1000
    assert all(-(2**63) <= key < 2**63 for key in keys)


def test_events_written_for_a_member_carry_its_request_id_and_client() -> None:
    member = Member(uuid.uuid4(), "someone", 1, uuid.uuid4(), frozenset({1}))

    with on_behalf_of(member):
        assert (current_request_id(), current_client()) == (str(member.request_id), "someone")
    assert (current_request_id(), current_client()) == (None, None)


def test_a_batch_covers_the_zones_of_all_its_members_leader_first() -> None:
    leader = Member(uuid.uuid4(), None, 1, None, frozenset({3}))
    follower = Member(uuid.uuid4(), None, 1, leader.request_id, frozenset({1, 3}))

    batch = Batch([leader, follower])

    assert batch.zone_ids == [1, 3]
    assert batch.leader is leader
    assert batch.request_ids == [leader.request_id, follower.request_id]


def test_a_message_finding_its_kafka_request_ended_publishes_only_what_no_other_message_of_its_own_did() -> None:
    assert publishes({"attempt": 1, "batch": 3, "led_by": "another"}, "m2")  # another's batch: its own message's job
    assert publishes({"attempt": 1, "batch": 1, "message": "m1"}, "m1")  # m1 again (redelivered, retried)
    assert not publishes({"attempt": 1, "batch": 1, "message": "m1"}, "m2")  # a second message: m1 published it
    assert publishes(None, "m2")  # it never started (the recovery job ended it)
    assert publishes({"attempt": 1}, "m2")  # started before messages were recorded
