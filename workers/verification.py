"""Proving what a zone's primary serves after a pass: one query per RRset, or one zone transfer.

The queries go pipelined over one TCP connection (workers/rfc2136.py). When a pass changed
more than ``TRANSFER_ABOVE`` RRsets and they are a large share of the zone, one AXFR costs
less than that many queries, and is what reconciliation reads too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from service.core.errors import PermanentDnsError
from workers import rfc2136

logger = logging.getLogger(__name__)

Key = tuple[str, str]

TRANSFER_ABOVE = 1_000  # RRsets; below, queries
TRANSFER_SHARE = 0.25  # of the zone's RRsets, at least


def served(
    keys: Sequence[Key],
    *,
    zone: str,
    key: rfc2136.TsigKey | None,
    server: rfc2136.Server,
    zone_size: Callable[[], int],
) -> tuple[Mapping[Key, Any], str]:
    """What the server serves for each of ``keys`` (None: nothing), and how it was asked
    (``queries`` or ``transfer``). Raises TransientDnsError."""
    if not keys:
        return {}, "queries"
    if key is not None and len(keys) > TRANSFER_ABOVE and len(keys) >= TRANSFER_SHARE * zone_size():
        try:
            transferred = rfc2136.transfer(zone, key, server)
        except PermanentDnsError as exc:  # transfers not allowed to our key: ask RRset by RRset
            logger.warning("zone %s could not be transferred (%s); verifying by queries", zone, exc.code)
        else:
            logger.info("verified %d RRsets by one transfer of %s", len(keys), zone)
            return {item: transferred.get(item) for item in keys}, "transfer"
    return rfc2136.served_rrsets(keys, server), "queries"
