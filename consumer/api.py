"""The consumer's calls to the API, as one more API client.

An answer is *decided* when the API accepted (2xx) or definitively refused (4xx but 408/429)
the event; anything else (unreachable, timeout, 5xx, 408, 429) is *undecided* and is tried
again with capped exponential backoff until it is decided or the consumer is asked to stop.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_when_event_set, wait_exponential

from consumer import metrics
from consumer.contract import Call

logger = logging.getLogger(__name__)


class Undecided(Exception):
    """The API gave no decision this time; try again."""


class Stopping(Exception):
    """The consumer was asked to stop while it waited for the API."""


@dataclass(frozen=True)
class Decision:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False  # the API gave back the request this idempotency key made before

    @property
    def accepted(self) -> bool:
        return 200 <= self.status_code < 300


class ApiClient:
    def __init__(self, base_url: str, key: str, *, timeout_s: float, retry_max_s: float, stop: threading.Event) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout_s, headers={"Authorization": f"Bearer {key}"})
        self.retry_max_s = retry_max_s
        self.stop = stop
        self.retried = 0

    def send(self, call: Call, *, request_id: uuid.UUID, idempotency_key: str, origin: dict[str, str]) -> Decision:
        headers = {"X-Request-ID": str(request_id), "Idempotency-Key": idempotency_key, **origin}
        retrying = Retrying(
            retry=retry_if_exception_type(Undecided),
            wait=wait_exponential(multiplier=0.2, max=self.retry_max_s),
            stop=stop_when_event_set(self.stop),
            sleep=self._sleep,
            before_sleep=self._count,
            reraise=True,
        )
        try:
            return retrying(self._once, call, headers)
        except Undecided as exc:
            raise Stopping(str(exc)) from exc

    def _once(self, call: Call, headers: dict[str, str]) -> Decision:
        try:
            answer = self.http.request(call.method, call.path, json=call.body, headers=headers)
        except httpx.HTTPError as exc:
            raise Undecided(f"the API cannot be reached: {type(exc).__name__}") from exc
        try:
            body = answer.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        if answer.status_code >= 500 or answer.status_code in (408, 429):
            raise Undecided(f"the API answered {answer.status_code}")
        if answer.status_code == 401:  # our own key is wrong: no event is to blame, none is dropped
            logger.error("the API refuses the consumer's key (%s): fix HOSTMASTER_CONSUMER_API_KEY", body.get("code"))
            raise Undecided("the API refuses the consumer's key")
        if answer.status_code == 409 and body.get("code") in ("concurrent_change", "idempotency_key_in_flight"):
            raise Undecided("the RRsets were being applied; sending again")
        if answer.status_code == 403 and body.get("code") == "scope_missing":  # our client's set-up, not the event
            logger.error("the consumer's client lacks a scope: %s", body.get("detail"))
            raise Undecided("the consumer's client lacks a scope")
        return Decision(answer.status_code, body, replayed=answer.headers.get("idempotent-replayed") == "true")

    def _sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)  # a stop request cuts the wait short

    def _count(self, state: RetryCallState) -> None:
        self.retried += 1
        metrics.EVENTS.labels("retried").inc()
        wait = state.next_action.sleep if state.next_action else 0
        reason = state.outcome.exception() if state.outcome else None
        logger.warning("API gave no decision (%s); trying again in %.1f s", reason, wait)

    def close(self) -> None:
        self.http.close()
