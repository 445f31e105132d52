"""Engine factory: one engine per process, a session per unit of work."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import create_engine


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 30, connect_timeout_s: int = 5) -> Engine:
    """Create the process's engine.

    Every connection gets a connect timeout and a statement timeout so that a
    stuck database answers with an error instead of hanging a request.
    """
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_timeout=connect_timeout_s,
        connect_args={
            "connect_timeout": connect_timeout_s,
            "options": "-c statement_timeout=15000 -c lock_timeout=10000",
            "application_name": "hostmaster",
        },
    )
