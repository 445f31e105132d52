"""Group commit: the v1 writes one API process holds at once are accepted together.

Alone, a write costs its own two commits — the tracker's opening, then its planning
transaction — and on this machine that alone caps a process far below what its CPU could
plan (bench/floor.py: ~250 accepted writes/s for the bare design with per-write
transactions, ~730/s grouped). So while one group is being accepted, the writes that arrive
wait and become the next group:

- under light load a group is one write, and it takes the single path (service/requests/provisioning.py)
  unchanged, at once: grouping adds no wait;
- under load the writes of a group share the tracker's opening statement, one planning
  transaction and its COMMIT (service/requests/batch.py: a savepoint each), and are then published.
  Each is still its own request — all or nothing for that write, its own tracker row, status,
  answer and result — and the order they are accepted in is an order they could have arrived
  in, since they were in flight together.

A group holds the writes of one client (its principal decides what each may do); writes of
other clients waiting at the same time form groups of their own, accepted one after the
other in the same pass. A body that is not JSON goes through the single path, which tracks
and rejects it. Only a fault of the database itself (the connection lost) fails every write
of a group, as it would fail each alone: their callers get the error (503).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from service.core.context import bound_client, bound_request_id
from service.core.dispatch import Dispatcher
from service.core.errors import RequestRejected
from service.registry.clients import Principal
from service.requests import batch, provisioning
from service.requests.payloads import parse_json_body
from service.requests.tracker import KafkaOrigin

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pending:
    """One write as its route received it."""

    request_id: uuid.UUID
    operation: str
    parser: provisioning.Parser
    body: bytes | None  # None: a delete, which takes no body
    principal: Principal
    target: dict[str, str] | None = None
    idempotency_key: str | None = None
    origin: KafkaOrigin | None = None


@dataclass
class _Waiting:
    write: Pending
    answer: asyncio.Future[provisioning.Outcome]


@dataclass
class WriteGroups:
    """The process's waiting writes and the one pass that accepts them (see the module's text)."""

    engine: Engine
    dispatcher: Dispatcher
    limits: provisioning.Limits
    max_group: int = 100
    _waiting: list[_Waiting] = field(default_factory=list)
    _accepting: bool = False
    _task: asyncio.Task[None] | None = None  # the running pass (held: the loop keeps only a weak reference)

    async def accept(self, write: Pending) -> provisioning.Outcome:
        """The write's outcome as its single call would give it; raises what that call would raise."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(write, loop.create_future())
        self._waiting.append(waiting)
        if not self._accepting:
            self._accepting = True
            # Its own context: the pass serves many requests, none of whose ids it may log under.
            self._task = loop.create_task(self._pass(), context=contextvars.Context())
        return await waiting.answer

    async def _pass(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting[: self.max_group], self._waiting[self.max_group :]
                try:
                    answers = await run_in_threadpool(self._accept_all, [item.write for item in group])
                except BaseException as exc:  # never leave a caller waiting
                    for item in group:
                        if not item.answer.done():
                            item.answer.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for item, answer in zip(group, answers, strict=True):
                    if item.answer.done():  # its caller went away
                        continue
                    if isinstance(answer, BaseException):
                        item.answer.set_exception(answer)
                    else:
                        item.answer.set_result(answer)
        finally:
            self._accepting = False

    def _accept_all(self, writes: Sequence[Pending]) -> list[provisioning.Outcome | BaseException]:
        """Every write's outcome or error, in order (in a worker thread: this is blocking work)."""
        answers: dict[int, provisioning.Outcome | BaseException] = {}
        by_client: dict[Principal, dict[int, batch.Write]] = {}
        for index, write in enumerate(writes):
            parsed = self._parsed(write) if len(writes) > 1 else None
            if parsed is None:
                answers[index] = self._alone(write)
            else:
                by_client.setdefault(write.principal, {})[index] = parsed
        for principal, group in by_client.items():
            if len(group) == 1:
                ((index, _),) = group.items()
                answers[index] = self._alone(writes[index])
                continue
            try:
                with bound_client(principal.name):  # on every step and message, as the route would bind it
                    results = batch.submit_many(
                        engine=self.engine,
                        dispatcher=self.dispatcher,
                        writes=list(group.values()),
                        principal=principal,
                        limits=self.limits,
                    )
            except Exception as exc:  # the database went away: every write of the group answers it
                answers.update((index, exc) for index in group)
                continue
            logger.debug("accepted %d writes of client %s together", len(group), principal.name)
            for index, result in zip(group, results, strict=True):
                answers[index] = result.error if result.error is not None else _outcome(result)
        return [answers[index] for index in range(len(writes))]

    def _parsed(self, write: Pending) -> batch.Write | None:
        """The write as a batch takes it; None when its body is not JSON (the single path says why)."""
        if write.body is None:
            payload: object = {}
        else:
            try:
                payload = parse_json_body(write.body)
            except RequestRejected:
                return None
        return batch.Write(
            request_id=write.request_id,
            operation=write.operation,
            parser=write.parser,
            payload=payload,
            target=write.target,
            idempotency_key=write.idempotency_key,
            origin=write.origin,
        )

    def _alone(self, write: Pending) -> provisioning.Outcome | BaseException:
        with bound_request_id(str(write.request_id)), bound_client(write.principal.name):
            try:
                return submit_alone(self.engine, self.dispatcher, self.limits, write)
            except Exception as exc:  # raised to its caller, as its single call's error would be
                return exc


def submit_alone(
    engine: Engine, dispatcher: Dispatcher, limits: provisioning.Limits, write: Pending
) -> provisioning.Outcome:
    """``write`` through the single path (service/requests/provisioning.py), blocking."""
    return provisioning.submit(
        engine=engine,
        dispatcher=dispatcher,
        request_id=write.request_id,
        body=write.body,
        parser=write.parser,
        operation=write.operation,
        limits=limits,
        target=write.target,
        principal=write.principal,
        idempotency_key=write.idempotency_key,
        origin=write.origin,
    )


def _outcome(answer: batch.Answer) -> provisioning.Outcome:
    assert answer.outcome is not None
    return answer.outcome
