"""The consumer's calls to the API, as one more API client.

An answer is *decided* when the API accepted (2xx) or definitively refused (4xx but 408/429)
the event, or when the event cannot become an HTTP request at all (``unsendable``); anything
else (unreachable, timeout, 5xx, 408, 429) is *undecided* and is tried again with capped
exponential backoff until it is decided or the consumer is asked to stop.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_when_event_set, wait_exponential

from consumer import metrics
from consumer.contract import Call, call_of

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


def undecided(status: int, body: dict[str, Any]) -> str | None:
    """Why an answer is no decision on the event (to be tried again), or None when it is one."""
    if status >= 500 or status in (408, 429):
        return f"the API answered {status}"
    if status == 401:  # our own key is wrong: no event is to blame, none is dropped
        logger.error("the API refuses the consumer's key (%s): fix HOSTMASTER_CONSUMER_API_KEY", body.get("code"))
        return "the API refuses the consumer's key"
    if status == 409 and body.get("code") in ("concurrent_change", "idempotency_key_in_flight"):
        return "the RRsets were being applied; sending again"
    if status == 403 and body.get("code") == "client_not_found":  # a topic bound to no active client
        logger.error(
            "a topic's client cannot be acted for: %s (fix HOSTMASTER_KAFKA_TOPIC_CLIENTS)", body.get("detail")
        )
        return "the topic's client cannot be acted for"
    if status == 403 and body.get("code") == "scope_missing":  # our client's set-up, not the event
        logger.error("the consumer's client lacks a scope: %s", body.get("detail"))
        return "the consumer's client lacks a scope"
    return None


def unsendable(exc: Exception) -> Decision:
    """The decision on an event that cannot become an HTTP request (status 0: the API never saw it)."""
    detail = f"the event cannot be sent as an HTTP request ({type(exc).__name__}: {str(exc)[:200]})"
    return Decision(0, {"code": "unsendable", "detail": detail})


def _acting(request_id: str, on_behalf_of: str | None) -> dict[str, str]:
    """The headers every call carries: its request id, and the client it acts for (a bound topic's)."""
    headers = {"X-Request-ID": request_id}
    if on_behalf_of is not None:
        headers["X-On-Behalf-Of"] = on_behalf_of
    return headers


def _body(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class ApiCaller:
    def __init__(self, base_url: str, key: str, *, timeout_s: float, retry_max_s: float, stop: threading.Event) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout_s, headers={"Authorization": f"Bearer {key}"})
        self.retry_max_s = retry_max_s
        self.stop = stop
        self.retried = 0

    def send(
        self,
        call: Call,
        *,
        request_id: uuid.UUID,
        idempotency_key: str,
        origin: dict[str, str],
        on_behalf_of: str | None = None,
    ) -> Decision:
        headers = {**_acting(str(request_id), on_behalf_of), "Idempotency-Key": idempotency_key, **origin}
        retrying = self._retrying()
        try:
            return retrying(self._once, call, headers)
        except Undecided as exc:
            raise Stopping(str(exc)) from exc

    def _once(self, call: Call, headers: dict[str, str]) -> Decision:
        try:
            answer = self.http.request(call.method, call.path, json=call.body, headers=headers)
        except (httpx.LocalProtocolError, httpx.InvalidURL, UnicodeEncodeError) as exc:
            # Refused before anything was sent: the event, not the API, is at fault, and sending
            # it again would stall every event behind it. Decided: a dead letter with the reason.
            return unsendable(exc)
        except httpx.HTTPError as exc:
            raise Undecided(f"the API cannot be reached: {type(exc).__name__}") from exc
        body = _body(answer)
        if (reason := undecided(answer.status_code, body)) is not None:
            raise Undecided(reason)
        return Decision(answer.status_code, body, replayed=answer.headers.get("idempotent-replayed") == "true")

    def send_batch(
        self, writes: Sequence[dict[str, Any]], *, request_id: uuid.UUID, on_behalf_of: str | None = None
    ) -> list[Decision]:
        """Decide every write of ``writes`` (``POST /api/v2/requests:batch``), in one call when
        the API answers it: a write left undecided is sent again, alone in a later call with the
        others left, until decided or stopped (Stopping). A batch the API refuses as a whole (a
        write its envelope rejects) is decided write by write through the single calls instead:
        the writes must be about different names, since those sent again come after the rest."""
        decisions: dict[int, Decision] = {}
        todo = list(range(len(writes)))
        retrying = self._retrying()
        try:
            for attempt in retrying:
                with attempt:
                    results = self._batch_once([writes[index] for index in todo], request_id, on_behalf_of)
                    left = []
                    for index, decision in zip(todo, results, strict=True):
                        if decision is None:
                            left.append(index)
                        else:
                            decisions[index] = decision
                    todo = left
                    if todo:
                        raise Undecided(f"{len(todo)} writes of the batch were not decided")
        except Undecided as exc:
            raise Stopping(str(exc)) from exc
        return [decisions[index] for index in range(len(writes))]

    def _batch_once(
        self, writes: list[dict[str, Any]], request_id: uuid.UUID, on_behalf_of: str | None
    ) -> list[Decision | None]:
        headers = _acting(str(request_id), on_behalf_of)
        try:
            answer = self.http.post("/api/v2/requests:batch", json={"writes": writes}, headers=headers)
        except httpx.HTTPError as exc:
            raise Undecided(f"the API cannot be reached: {type(exc).__name__}") from exc
        body = _body(answer)
        if (reason := undecided(answer.status_code, body)) is not None:
            raise Undecided(reason)
        if answer.status_code != 200:  # refused whole: each write through its single call
            logger.warning("the API refused a batch (%s); sending its writes one by one", body.get("code"))
            return [self._alone(write, on_behalf_of) for write in writes]
        decided: list[Decision | None] = []
        for result in body.get("results", []):
            status, found = int(result.get("status", 0)), result.get("body") or {}
            decision = Decision(status, found, replayed=bool(result.get("replayed")))
            decided.append(None if undecided(status, found) is not None else decision)
        if len(decided) != len(writes):
            raise Undecided(f"the API answered {len(decided)} of {len(writes)} writes")
        return decided

    def _alone(self, write: dict[str, Any], on_behalf_of: str | None) -> Decision | None:
        """The write through its single call, once; None when that gave no decision (sent again later)."""
        call = call_of(write)
        headers = _acting(str(write.get("request_id") or uuid.uuid4()), on_behalf_of)
        if write.get("idempotency_key"):
            headers["Idempotency-Key"] = write["idempotency_key"]
        if kafka := write.get("kafka"):
            headers.update(
                {
                    "X-Kafka-Topic": kafka["topic"],
                    "X-Kafka-Partition": str(kafka["partition"]),
                    "X-Kafka-Offset": str(kafka["offset"]),
                }
            )
        try:
            return self._once(call, headers)
        except Undecided as exc:
            logger.info("a write of a refused batch was not decided alone (%s); sending it again", exc)
            return None

    def _retrying(self) -> Retrying:
        """Until decided, with capped exponential backoff, or until the consumer is asked to stop."""
        return Retrying(
            retry=retry_if_exception_type(Undecided),
            wait=wait_exponential(multiplier=0.2, max=self.retry_max_s),
            stop=stop_when_event_set(self.stop),
            sleep=self._sleep,
            before_sleep=self._count,
            reraise=True,
        )

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
