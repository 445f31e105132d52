"""What the routes share: error shapes for the OpenAPI document, reading a body, a 202 answer."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, TypeAdapter, ValidationError

from db.schemas import IDEMPOTENCY_KEY, Problem, RequestAccepted
from service.core.errors import InvalidRequest, PayloadTooLarge, Violation
from service.core.settings import Settings
from service.dns.validation import violations_from_pydantic
from service.registry.clients import Principal
from service.requests import provisioning
from service.requests.groups import Pending
from service.requests.intake import Intake
from service.requests.payloads import parse_json_body
from service.requests.tracker import KafkaOrigin

_WHY = {
    400: "The request cannot be read.",
    401: "No API key, or not one Hostmaster knows (`Authorization: Bearer <key>`).",
    403: "The key may not do this, or not in this zone.",
    429: "Too many requests from this client; try again after Retry-After seconds.",
    404: "Not found.",
    409: "Conflicts with the desired state; `detail` names what it conflicts with.",
    413: "The body passes the size limit.",
    422: "Not valid; `violations` lists every bad field.",
    503: "A dependency cannot be reached; try again after Retry-After seconds.",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Error answers for the OpenAPI document: RFC 9457 problem+json (the Problem model)."""
    media = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {status: {"model": Problem, "description": _WHY[status], "content": media} for status in statuses}


_BODY_MODELS: dict[str, type[BaseModel]] = {}
ModelT = TypeVar("ModelT", bound=BaseModel)


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """An OpenAPI request body for a route that reads its body itself (to track it before parsing)."""
    _BODY_MODELS[model.__name__] = model
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def install_body_schemas(app: FastAPI) -> None:
    """Put the models of ``json_body`` bodies into the OpenAPI components, where their $refs point."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for name, model in _BODY_MODELS.items():
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(schema.pop("$defs", {}))
            components[name] = schema
        return document

    app.openapi = openapi  # type: ignore[method-assign]


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to pass ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the body passes the limit of {limit} bytes")
    return bytes(body)


async def submit(
    request: Request,
    response: Response,
    *,
    parser: provisioning.Parser,
    operation: str,
    principal: Principal,
    settings: Settings,
    target: dict[str, str] | None = None,
    with_body: bool = True,
) -> provisioning.Outcome:
    """A write route's work: the body read within its limit, the headers it may carry, the write
    handed to the one way in (service/requests/intake.py), and its answer's headers."""
    body = await read_body(request, settings.max_body_bytes) if with_body else None
    intake: Intake = request.app.state.intake
    outcome = await intake.accept(
        Pending(
            request_id=request.state.request_id,
            operation=operation,
            parser=parser,
            body=body,
            principal=principal,
            target=target,
            idempotency_key=_idempotency_key(request),
            origin=_kafka_origin(request),
        )
    )
    if outcome.request is not None:
        response.headers["Location"] = status_url(request, outcome)
    if outcome.repeated:
        response.headers["Idempotent-Replayed"] = "true"
    return outcome


# Whole values only (fullmatch): `$` alone would let a trailing newline through.
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_NUMBER = re.compile(r"[0-9]{1,18}")  # not str.isdigit(), which takes "²" and other digits int() refuses


def _idempotency_key(request: Request) -> str | None:
    """``Idempotency-Key``: the same key and body again give the same request, not a second one."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidRequest([Violation("Idempotency-Key", "use 1 to 255 printable ASCII characters, no spaces")])
    return key


def _kafka_origin(request: Request) -> KafkaOrigin | None:
    """Where the consumer read the event: X-Kafka-Topic, X-Kafka-Partition, X-Kafka-Offset."""
    topic = request.headers.get("x-kafka-topic")
    if topic is None:
        return None
    partition = request.headers.get("x-kafka-partition", "")
    offset = request.headers.get("x-kafka-offset", "")
    if not (_TOPIC.fullmatch(topic) and _NUMBER.fullmatch(partition) and _NUMBER.fullmatch(offset)):
        raise InvalidRequest(
            [Violation("X-Kafka-Topic", "give a topic name with X-Kafka-Partition and X-Kafka-Offset")]
        )
    return KafkaOrigin(topic, int(partition), int(offset))


async def read_model(request: Request, model: type[ModelT], settings: Settings) -> ModelT:
    """The body as ``model``, read only now — after the key was checked — and within the size limit."""
    payload = parse_json_body(await read_body(request, settings.max_body_bytes))
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequest(violations_from_pydantic(exc)) from None


_ANY_ID = "00000000-0000-0000-0000-000000000000"


def status_url(request: Request, outcome: provisioning.Outcome) -> str:
    """The request's URL (the route looked up once per call: the search is not free)."""
    assert outcome.request is not None
    template: str | None = getattr(request.state, "status_url_template", None)
    if template is None:
        template = str(request.url_for("get_request", request_id=_ANY_ID))
        request.state.status_url_template = template
    return template.replace(_ANY_ID, str(outcome.request.id))


_ACCEPTED = TypeAdapter(RequestAccepted)
_BODY_HEADERS = ("content-length", "content-type")


def accepted_response(request: Request, response: Response, outcome: provisioning.Outcome) -> Response:
    """The 202 of a write, serialised once with the headers set on ``response``. A returned
    RequestAccepted would be validated again by FastAPI, which for a change set of 5,000 RRsets
    costs more (0.45 s) than planning it."""
    headers = {
        name: value for name, value in response.headers.items() if name not in ("content-length", "content-type")
    }
    body = _ACCEPTED.dump_json(accepted(request, outcome))
    return Response(body, status_code=202, media_type="application/json", headers=headers)


def accepted(request: Request, outcome: provisioning.Outcome) -> RequestAccepted:
    assert outcome.request is not None
    return RequestAccepted(
        request_id=outcome.request.id,
        status=outcome.request.status,
        status_url=status_url(request, outcome),
        changes=outcome.changes,
    )
