"""The one way in for a write: the API's write routes, its batch route and the console hand theirs here.

An ``Intake`` holds what every write is accepted with — the engine, the dispatcher, the limits of
the settings — so that no caller assembles a write's acceptance itself (the console once did, and
left out the Idempotency-Key window). A v1 write goes through group commit when it is on
(service/requests/groups.py); a change set, or every write when it is off, through the single path
(service/requests/provisioning.py); a batch through service/requests/batch.py. The Kafka consumer
calls the API, so its writes come in here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from service.core.dispatch import Dispatcher
from service.core.settings import Settings
from service.registry.clients import Principal
from service.requests import batch, provisioning
from service.requests.groups import Pending, WriteGroups, submit_alone

GROUPED = frozenset({"record.create", "record.replace", "record.delete"})  # v1: change sets are accepted alone


@dataclass
class Intake:
    engine: Engine
    dispatcher: Dispatcher
    limits: provisioning.Limits
    groups: WriteGroups | None = None  # group commit, when HOSTMASTER_WRITE_GROUP_MAX > 1

    @classmethod
    def of(cls, engine: Engine, dispatcher: Dispatcher, settings: Settings) -> Intake:
        limits = provisioning.Limits.of(settings)
        groups = (
            WriteGroups(engine=engine, dispatcher=dispatcher, limits=limits, max_group=settings.write_group_max)
            if settings.write_group_max > 1
            else None
        )
        return cls(engine=engine, dispatcher=dispatcher, limits=limits, groups=groups)

    async def accept(self, write: Pending) -> provisioning.Outcome:
        """The write's outcome; raises what refuses it (RequestRejected) or what failed (503)."""
        if self.groups is not None and write.operation in GROUPED:
            return await self.groups.accept(write)
        return await run_in_threadpool(submit_alone, self.engine, self.dispatcher, self.limits, write)

    async def accept_batch(self, principal: Principal, writes: Sequence[batch.Write]) -> list[batch.Answer]:
        """Each of a batch's writes accepted as its single call would be, in order."""
        return await run_in_threadpool(
            lambda: batch.submit_many(
                engine=self.engine,
                dispatcher=self.dispatcher,
                writes=writes,
                principal=principal,
                limits=self.limits,
            )
        )
