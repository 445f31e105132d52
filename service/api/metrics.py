"""Prometheus metrics: no key needed, like the health probes (service/operations/gauges.py says what they are)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from service.api import instrument
from service.api.deps import SessionDep
from service.operations import gauges

router = APIRouter()


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="HTTP traffic, requests by status, zone drift and reconciliation times (Prometheus text format)",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def prometheus_metrics(session: SessionDep) -> PlainTextResponse:
    text = instrument.exposition() + gauges.exposition(session)
    return PlainTextResponse(text, media_type=gauges.CONTENT_TYPE)
