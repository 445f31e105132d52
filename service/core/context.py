"""The request id of the work being done now, carried in a contextvar.

The API sets it from X-Request-ID, the worker from the Dramatiq message options,
the consumer from the Kafka headers; every log line reads it from here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
client_var: ContextVar[str | None] = ContextVar("client", default=None)


def current_client() -> str | None:
    """The name of the API client the work is done for (recorded on every tracker event)."""
    return client_var.get()


def current_request_id() -> str | None:
    return request_id_var.get()


@contextmanager
def bound_request_id(request_id: str | None) -> Iterator[None]:
    token = request_id_var.set(request_id)
    try:
        yield
    finally:
        request_id_var.reset(token)


@contextmanager
def bound_client(name: str | None) -> Iterator[None]:
    """Work done for client ``name`` (a group commit serves many callers from one context)."""
    token = client_var.set(name)
    try:
        yield
    finally:
        client_var.reset(token)


def parse_request_id(value: str | None) -> uuid.UUID | None:
    """A request id given by a client is accepted when it is a UUID, as asgi-correlation-id does."""
    if not value or len(value) > 64:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
