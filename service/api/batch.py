"""API v2: many writes in one call, each its own request (service/requests/batch.py)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from db.schemas import BatchAnswer, BatchIn, BatchOut, BatchWriteIn
from service.api.auth import ClientDep
from service.api.common import accepted, json_body, problems, read_model
from service.api.deps import SettingsDep
from service.api.problems import answer_of
from service.api.ratelimit import TokenBuckets, retry_after
from service.core.context import bound_request_id
from service.core.errors import InvalidRequest, RateLimited, Violation
from service.core.settings import Settings
from service.requests import batch, provisioning
from service.requests.intake import Intake
from service.requests.tracker import KafkaOrigin

router = APIRouter(prefix="/api/v2", tags=["change sets (v2)"], responses=problems(401, 403, 429, 503))


@router.post(
    "/requests:batch",
    response_model=BatchOut,
    openapi_extra=json_body(BatchIn),
    responses=problems(413, 422),
    summary="Many writes in one call, each its own request with its own answer",
    description=(
        "Each write is accepted as its single call would be (v1 record create/replace/delete, v2 change set): "
        "its own request, tracker row, idempotency key, status and result, all or nothing for that write, "
        "never for the batch, in the order given. The answer lists each write's status code and body."
    ),
)
async def post_batch(request: Request, settings: SettingsDep, client: ClientDep) -> BatchOut:
    asked = await read_model(request, BatchIn, settings)
    if len(asked.writes) > settings.max_batch_writes:
        limit = settings.max_batch_writes
        raise InvalidRequest([Violation("writes", f"holds {len(asked.writes)} writes; the limit is {limit}")])
    _take_the_rest(request.app.state.rate_limits, client.name, len(asked.writes), settings)
    writes = [_write(item, index) for index, item in enumerate(asked.writes)]
    intake: Intake = request.app.state.intake
    answers = await intake.accept_batch(client, writes)
    return BatchOut(results=[_answer(request, answer) for answer in answers])


def _write(item: BatchWriteIn, index: int) -> batch.Write:
    """The write as its single call's route would hand it on; InvalidRequest names what it lacks."""
    payload = item.body
    target: dict[str, str] | None = None
    parser: provisioning.Parser
    if item.operation == "record.create":
        parser = provisioning.record_create
    elif item.operation == "changeset":
        zone = _given(item.zone, f"writes[{index}].zone")
        parser, target = provisioning.change_set(zone), {"zone": zone}
    else:
        name, rtype = _given(item.name, f"writes[{index}].name"), _given(item.type, f"writes[{index}].type")
        target = {"name": name, "type": rtype}
        if item.operation == "record.replace":
            parser = provisioning.record_replace(name, rtype)
        elif item.body:
            raise InvalidRequest([Violation(f"writes[{index}].body", "a record.delete takes no body")])
        else:
            parser, payload = provisioning.record_delete(name, rtype), {}
    return batch.Write(
        request_id=item.request_id or uuid.uuid4(),
        operation=item.operation,
        parser=parser,
        payload=payload,
        target=target,
        idempotency_key=item.idempotency_key,
        origin=KafkaOrigin(item.kafka.topic, item.kafka.partition, item.kafka.offset) if item.kafka else None,
    )


def _given(value: str | None, field: str) -> str:
    if not value:
        raise InvalidRequest([Violation(field, "is required for this operation")])
    return value


def _take_the_rest(buckets: TokenBuckets, name: str, writes: int, settings: Settings) -> None:
    """A batch of N writes costs N of the client's rate, all at once or none (authentication
    took the first); more than the client's burst could never pass, so it is refused."""
    if writes > settings.rate_limit_burst:
        burst = settings.rate_limit_burst
        raise InvalidRequest(
            [Violation("writes", f"holds {writes} writes; a client may send {burst} at once (its rate limit's burst)")]
        )
    wait = buckets.take(name, writes - 1) if writes > 1 else 0.0
    if wait:
        raise RateLimited(
            f"client {name} sends more than {settings.rate_limit_per_s:g} writes a second",
            retry_after_s=retry_after(wait),
        )


def _answer(request: Request, answer: batch.Answer) -> BatchAnswer:
    if answer.error is not None:
        with bound_request_id(str(answer.request_id)):
            status, body, _ = answer_of(answer.error)
        if answer.error.retry_after_s is not None:
            body["retry_after_s"] = answer.error.retry_after_s
        return BatchAnswer(status=status, body=body)
    outcome = answer.outcome
    assert outcome is not None
    assert outcome.request is not None
    body = accepted(request, outcome).model_dump(mode="json")
    return BatchAnswer(status=202, body=body, replayed=outcome.repeated)
