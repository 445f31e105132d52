"""Console sessions: what a signed-in browser's cookie stands for, kept on the server.

Signing in checks the API key once and opens a session: a random token (256 bits) goes in the
cookie, and only its SHA-256 is stored, with the client and an expiry
(``HOSTMASTER_CONSOLE_SESSION_MINUTES``). Each page reads the session and its client in one
query, so a session that expired, was signed out (its row deleted), or whose client was revoked
or re-keyed since (rotating or revoking a key ends its sessions) opens nothing, at once. A client
keeps at most ``MAX_PER_CLIENT`` sessions: signing in again past that ends its oldest. Expired
rows are deleted by the recovery job (service/operations/retention.py).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlmodel import Session, col

from db.models import ApiClient, ConsoleSession, utcnow
from service.registry.clients import Principal, principal_of
from service.registry.quotas import Quota

MAX_PER_CLIENT = 20
MAX_TOKEN = 64  # a token is 43 characters; anything longer is not one of ours


def open_session(session: Session, client: str, lifetime: timedelta) -> str:
    """A new session for ``client`` (signed in just now); its token, for the cookie and nowhere else."""
    client_id = session.execute(select(col(ApiClient.id)).where(col(ApiClient.name) == client)).scalar_one()
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(ConsoleSession(id=_digest(token), client_id=client_id, created_at=now, expires_at=now + lifetime))
    session.flush()
    newest = (
        select(col(ConsoleSession.id))
        .where(col(ConsoleSession.client_id) == client_id)
        .order_by(col(ConsoleSession.created_at).desc())
        .limit(MAX_PER_CLIENT)
    )
    session.execute(
        delete(ConsoleSession).where(
            col(ConsoleSession.client_id) == client_id, col(ConsoleSession.id).not_in(newest.scalar_subquery())
        )
    )
    session.commit()
    return token


def client_of(session: Session, token: str, quota_defaults: Quota) -> Principal | None:
    """The client whose live session ``token`` opens; None when it opens none."""
    if not token or len(token) > MAX_TOKEN:
        return None
    found = session.execute(
        select(ApiClient)
        .join(ConsoleSession, col(ConsoleSession.client_id) == col(ApiClient.id))
        .where(
            col(ConsoleSession.id) == _digest(token),
            col(ConsoleSession.expires_at) > utcnow(),
            col(ApiClient.revoked_at).is_(None),
        )
    ).scalar_one_or_none()
    return principal_of(found, quota_defaults) if found is not None else None


def close(session: Session, token: str) -> None:
    """End the session of ``token``: its cookie, wherever a copy of it is, opens nothing more."""
    session.execute(delete(ConsoleSession).where(col(ConsoleSession.id) == _digest(token)))
    session.commit()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", errors="replace")).hexdigest()
