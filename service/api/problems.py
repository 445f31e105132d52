"""The one place where exceptions become HTTP answers: RFC 9457 problem+json bodies.

Every body has ``type``, ``title``, ``status``, ``detail``, ``code`` and ``request_id``;
a 422 lists each violation with its ``field``. No answer carries a stack trace.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.core.context import current_request_id
from service.core.errors import (
    Conflict,
    DependencyUnavailable,
    Forbidden,
    HostmasterError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RequestRejected,
    Unauthorized,
    Violation,
)
from service.dns.validation import field_path

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int, detail: str, *, code: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = problem_body(status, detail, code=code, **extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_body(status: int, detail: str, *, code: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": f"urn:hostmaster:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": current_request_id(),
        **extra,
    }


def _violations(violations: list[Violation]) -> list[dict[str, str]]:
    return [violation.as_json() for violation in violations]


# Most specific first: the first class the error is an instance of gives its status.
_STATUSES: tuple[tuple[type[HostmasterError], int], ...] = (
    (InvalidRequest, 422),
    (NotFound, 404),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (Unauthorized, 401),
    (Forbidden, 403),
    (RateLimited, 429),
    (RequestRejected, 400),
    (DependencyUnavailable, 503),
)


def status_of(exc: HostmasterError) -> int:
    return next((status for kind, status in _STATUSES if isinstance(exc, kind)), 500)


async def hostmaster_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HostmasterError)
    status, body, headers = answer_of(exc)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def answer_of(exc: HostmasterError) -> tuple[int, dict[str, Any], dict[str, str] | None]:
    """The status, problem body and headers ``exc`` is answered with (also per write of a batch)."""
    status = status_of(exc)
    extra: dict[str, Any] = {}
    headers = None
    if isinstance(exc, InvalidRequest):
        extra["violations"] = _violations(exc.violations)
    if isinstance(exc, Unauthorized):
        headers = {"WWW-Authenticate": 'Bearer realm="hostmaster"'}
    if exc.retry_after_s is not None:
        headers = {"Retry-After": str(exc.retry_after_s)}
    if isinstance(exc, DependencyUnavailable):
        logger.warning("answering 503: %s", exc.detail)
    if status == 500:
        logger.error("unexpected %s: %s", type(exc).__name__, exc.detail)
    return status, problem_body(status, exc.detail, code=exc.code, **extra), headers


def violations_of(exc: RequestValidationError) -> list[Violation]:
    """FastAPI's validation errors (path, query, body) as our violations, named by their place."""
    return [
        Violation(field_path([part for part in error.get("loc", ()) if part != "body"]), str(error.get("msg")))
        for error in exc.errors()
    ]


async def request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    violations = violations_of(exc)
    fields = ", ".join(v.field for v in violations)
    return problem(422, f"the request is not valid: {fields}", code="invalid", violations=_violations(violations))


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # FastAPI could not parse a JSON body: the same answer as our own routes give
        violation = [{"field": "body", "message": "is not valid JSON"}]
        return problem(422, "the request is not valid: body", code="invalid", violations=violation)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    headers = dict(exc.headers) if exc.headers else None
    return problem(exc.status_code, str(exc.detail), code=code, headers=headers)


async def database_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("database error: %s", type(exc).__name__)
    return problem(
        503,
        "the database cannot be reached; try again shortly",
        code="database_unavailable",
        headers={"Retry-After": "5"},
    )


async def unstorable_value(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("the database refused a value: %s", type(exc).__name__)
    return problem(422, "a value cannot be stored (out of range or not representable)", code="unstorable_value")


def install(app: FastAPI) -> None:
    app.add_exception_handler(HostmasterError, hostmaster_error)
    app.add_exception_handler(RequestValidationError, request_validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(OperationalError, database_error)
    app.add_exception_handler(InterfaceError, database_error)
    app.add_exception_handler(DataError, unstorable_value)
