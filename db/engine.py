"""Engine factory: one engine per process, a session per unit of work.

Connections are not pinged on every checkout (``pool_pre_ping`` costs a round trip per unit
of work, seven per write once). A connection is pinged only when it has sat unused in the
pool for ``IDLE_BEFORE_PING_S``; a dead one is then replaced before it is handed out (the pool
retries the checkout on ``DisconnectionError``). A connection that dies while busy fails that
one unit of work, and SQLAlchemy then discards every connection opened before it, so after a
PostgreSQL restart at most the statements already under way fail.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError
from sqlmodel import create_engine

IDLE_BEFORE_PING_S = 1.0
_CHECKED_IN = "hostmaster_checked_in"  # the pool record's info key: when the connection came back


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 30, connect_timeout_s: int = 5) -> Engine:
    """Create the process's engine.

    Every connection gets a connect timeout and a statement timeout so that a
    stuck database answers with an error instead of hanging a request. The pool hands out
    the most recently used connection first, so under load connections stay warm and the
    extra ones age out.
    """
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        pool_use_lifo=True,
        pool_timeout=connect_timeout_s,
        connect_args={
            "connect_timeout": connect_timeout_s,
            "options": "-c statement_timeout=15000 -c lock_timeout=10000",
            "application_name": "hostmaster",
        },
    )
    event.listen(engine, "checkin", _checked_in)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


def _checked_in(dbapi_connection: Any, record: Any) -> None:
    record.info[_CHECKED_IN] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    since = record.info.get(_CHECKED_IN)
    if since is None or time.monotonic() - since < IDLE_BEFORE_PING_S:
        return  # new, or used a moment ago
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as exc:
        raise DisconnectionError("the pooled connection is gone; the pool opens another") from exc
