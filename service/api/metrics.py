"""Prometheus metrics: no key needed, like the health probes (service/metrics.py says what they are)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from service import metrics
from service.api.deps import SessionDep

router = APIRouter()


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Zone drift, reconciliation times and requests by status, in the Prometheus text format",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def prometheus_metrics(session: SessionDep) -> PlainTextResponse:
    return PlainTextResponse(metrics.exposition(session), media_type=metrics.CONTENT_TYPE)
