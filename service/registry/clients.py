"""API clients: who calls, with which scopes, in which zones — and their keys.

A key is ``hm_<key id>_<secret>``: the key id (48 random bits, public) finds the client, the
secret (256 random bits) proves it. Only an HMAC-SHA256 of the whole key with the pepper
(a secret from the secrets provider) is stored, so a copy of the database opens nothing.
A key is shown once, when it is made (create or rotate).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import delete
from sqlmodel import Session, col, select

from db.models import ApiClient, ConsoleSession, Scope, utcnow
from service.core.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized, Violation
from service.dns.names import BadName, is_within, normalize_name, shown
from service.registry.quotas import NO_LIMIT, Quota
from service.registry.unique import commit_unique

logger = logging.getLogger(__name__)

_KEY = re.compile(r"^hm_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
ALL_ZONES = "*"


@dataclass(frozen=True)
class Principal:
    """The client a request is made for, as the business logic sees it."""

    name: str
    scopes: frozenset[str]
    zones: tuple[str, ...]
    quota: Quota = NO_LIMIT  # its limits (service/registry/quotas.py); an admin has none

    @property
    def admin(self) -> bool:
        return Scope.admin in self.scopes

    def may(self, scope: Scope) -> bool:
        if self.admin:
            return True
        return scope in self.scopes or (scope == Scope.read and Scope.write in self.scopes)

    def grants(self, zone: str) -> bool:
        """True when ``zone`` (absolute) is one of the client's zones."""
        if self.admin:
            return True
        for grant in self.zones:
            if grant in (ALL_ZONES, zone):
                return True
            if grant.startswith("*.") and is_within(zone, grant[2:]):
                return True
        return False

    def require(self, scope: Scope, zones: Iterable[str] = ()) -> None:
        if not self.may(scope):
            raise Forbidden(f"client {self.name} does not have the {scope.value} scope", code="scope_missing")
        refused = sorted({zone for zone in zones if not self.grants(zone)})
        if refused:
            raise Forbidden(f"client {self.name} is not granted zone {', '.join(refused)}", code="zone_not_granted")


def principal_of(client: ApiClient, defaults: Quota = NO_LIMIT) -> Principal:
    """The client as the business logic sees it; ``defaults``: the service's quotas."""
    scopes = frozenset(client.scopes)
    quota = NO_LIMIT if Scope.admin in scopes else defaults.of(client)
    return Principal(client.name, scopes, tuple(client.zones), quota)


def authenticate(session: Session, key: str, pepper: bytes, defaults: Quota = NO_LIMIT) -> Principal:
    """The client whose key this is; Unauthorized for anything else, saying no more than that."""
    found = _look_up(session, key, defaults)
    return _check_key(found, key, pepper)


@dataclass(frozen=True)
class _Found:
    key_hash: str
    revoked: bool
    principal: Principal


def _look_up(session: Session, key: str, defaults: Quota) -> _Found | None:
    match = _KEY.fullmatch(key)
    if match is None:
        return None
    client = session.exec(select(ApiClient).where(ApiClient.key_id == match.group(1))).first()
    if client is None:
        return None
    return _Found(client.key_hash, client.revoked_at is not None, principal_of(client, defaults))


def _check_key(found: _Found | None, key: str, pepper: bytes) -> Principal:
    expected = found.key_hash if found is not None else hash_key("hm_000000000000_" + "A" * 43, pepper)
    if not hmac.compare_digest(expected, hash_key(key, pepper)) or found is None or found.revoked:
        raise Unauthorized("the API key is missing, malformed, unknown or revoked", code="bad_key")
    return found.principal


class RecentKeys:
    """Clients read for a key in the last ``ttl_s`` seconds, by key id, so a busy client is not read
    from the database on every call.

    What is kept is what the database said (the key's hash, revoked or not, scopes, zones and
    quotas), and the key is still checked against that hash on every call: a wrong secret for a
    known key id is refused as before. A revocation, a rotation (the old key id stops being read)
    or a change of grants or quotas is seen within ``ttl_s``. Unknown key ids are never kept: a guesser pays a
    query each time, within the rate limit for unauthenticated calls.
    """

    def __init__(
        self, ttl_s: float, clock: Callable[[], float] = time.monotonic, quota_defaults: Quota = NO_LIMIT
    ) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._quota_defaults = quota_defaults
        self._found: dict[str, tuple[float, _Found]] = {}
        self._named: dict[str, tuple[float, Principal | None]] = {}  # clients acted for, by name

    def kept(self, key: str, pepper: bytes) -> Principal | None:
        """The client of ``key`` if it was read within the window (Unauthorized if it does not match);
        None when it must be read (``authenticate``). Does no I/O."""
        match = _KEY.fullmatch(key)
        kept = self._found.get(match.group(1)) if match is not None else None
        if kept is None or self._clock() - kept[0] >= self._ttl_s:
            return None
        return _check_key(kept[1], key, pepper)

    def authenticate(self, session_factory: Callable[[], Session], key: str, pepper: bytes) -> Principal:
        """The client of ``key``, from the window or read from the database (and kept)."""
        if (principal := self.kept(key, pepper)) is not None:
            return principal
        match = _KEY.fullmatch(key)
        key_id = match.group(1) if match is not None else None
        now = self._clock()
        with session_factory() as session:
            found = _look_up(session, key, self._quota_defaults)
        if found is not None and key_id is not None and self._ttl_s > 0:
            if len(self._found) >= MAX_KEPT:
                self._found.clear()  # many clients at once: start again rather than grow
            self._found[key_id] = (now, found)
        return _check_key(found, key, pepper)

    def acting_for(self, session_factory: Callable[[], Session], name: str) -> Principal:
        """The client ``name`` a delegate acts for, read at most once per window; Forbidden when
        there is no such client or it is revoked (a revocation is seen within ``ttl_s``)."""
        now = self._clock()
        kept = self._named.get(name)
        if kept is None or now - kept[0] >= self._ttl_s:
            with session_factory() as session:
                client = (
                    session.exec(select(ApiClient).where(ApiClient.name == name)).first()
                    if _NAME.fullmatch(name)
                    else None
                )
            found = (
                principal_of(client, self._quota_defaults) if client is not None and client.revoked_at is None else None
            )
            if self._ttl_s > 0:
                if len(self._named) >= MAX_KEPT:
                    self._named.clear()
                self._named[name] = (now, found)
        else:
            found = kept[1]
        if found is None:
            raise Forbidden(f"no active client is named {shown(name)} to act for", code="client_not_found")
        if Scope.delegate in found.scopes and not found.admin:
            raise Forbidden(
                f"client {found.name} is a delegate itself; act for the client it stands for", code="scope_missing"
            )
        return found


MAX_KEPT = 10_000


def create_client(
    session: Session,
    *,
    name: str,
    scopes: Sequence[str],
    zones: Sequence[str],
    pepper: bytes,
    max_rrsets: int | None = None,
    max_changes_per_day: int | None = None,
) -> tuple[ApiClient, str]:
    """A new client and its key (returned once, never stored); a quota left None is the service's default."""
    _check(name, scopes, zones)
    key_id, key = _new_key()
    client = ApiClient(
        name=name,
        key_id=key_id,
        key_hash=hash_key(key, pepper),
        scopes=sorted(set(scopes)),
        zones=[_grant(zone) for zone in zones],
        max_rrsets=max_rrsets,
        max_changes_per_day=max_changes_per_day,
    )
    commit_unique(
        session, client, Conflict(f"a client named {name} exists already; rotate its key instead", code="client_exists")
    )
    logger.info("client %s created with scopes %s", name, ",".join(client.scopes))
    return client, key


def rotate_key(session: Session, *, name: str, pepper: bytes) -> tuple[ApiClient, str]:
    """A new key for the client; the old one stops working at once, and its console sessions end."""
    client = get_client(session, name, for_update=True)
    if client.revoked_at is not None:
        raise Conflict(f"client {name} is revoked; create a new client instead", code="client_revoked")
    client.key_id, key = _new_key()
    client.key_hash = hash_key(key, pepper)
    client.rotated_at = utcnow()
    session.add(client)
    _end_console_sessions(session, client)  # signed in with the old key: sign in again with the new
    session.commit()
    session.refresh(client)
    logger.info("client %s has a new key", name)
    return client, key


QUOTA_FIELDS = ("max_rrsets", "max_changes_per_day")


def set_quotas(session: Session, *, name: str, quotas: Mapping[str, int | None]) -> ApiClient:
    """The client with the quotas named in ``quotas`` set (None: back to the service's default)."""
    client = get_client(session, name, for_update=True)
    for field, value in quotas.items():
        if field not in QUOTA_FIELDS:
            raise InvalidRequest([Violation(field, f"is not a quota; the quotas are {', '.join(QUOTA_FIELDS)}")])
        if value is not None and value < 0:
            raise InvalidRequest([Violation(field, "must be 0 or more, or null for the service's default")])
        setattr(client, field, value)
    session.add(client)
    session.commit()
    session.refresh(client)
    logger.info("client %s has quotas %s", name, {field: getattr(client, field) for field in QUOTA_FIELDS})
    return client


def revoke(session: Session, *, name: str) -> ApiClient:
    client = get_client(session, name)
    client.revoked_at = utcnow()
    session.add(client)
    _end_console_sessions(session, client)
    session.commit()
    session.refresh(client)
    logger.info("client %s revoked", name)
    return client


def _end_console_sessions(session: Session, client: ApiClient) -> None:
    session.execute(delete(ConsoleSession).where(col(ConsoleSession.client_id) == client.id))


def get_client(session: Session, name: str, *, for_update: bool = False) -> ApiClient:
    if not _NAME.fullmatch(name):
        raise NotFound(f"no client is named {shown(name)}", code="client_not_found")
    statement = select(ApiClient).where(ApiClient.name == name)
    client = session.exec(statement.with_for_update() if for_update else statement).first()
    if client is None:
        raise NotFound(f"no client is named {shown(name)}", code="client_not_found")
    return client


def list_clients(session: Session) -> list[ApiClient]:
    return list(session.exec(select(ApiClient).order_by(col(ApiClient.name))).all())


def hash_key(key: str, pepper: bytes) -> str:
    return hmac.new(pepper, key.encode("utf-8", errors="replace"), hashlib.sha256).hexdigest()


def _new_key() -> tuple[str, str]:
    key_id = secrets.token_hex(6)
    return key_id, f"hm_{key_id}_{secrets.token_urlsafe(32)}"


def _check(name: str, scopes: Sequence[str], zones: Sequence[str]) -> None:
    violations = []
    if not _NAME.fullmatch(name):
        violations.append(Violation("name", "use 1 to 64 lower-case letters, digits, dots, hyphens, underscores"))
    if not scopes:
        violations.append(Violation("scopes", "must hold at least one of read, write, admin, delegate"))
    for index, scope in enumerate(scopes):
        if scope not in {member.value for member in Scope}:
            violations.append(
                Violation(f"scopes[{index}]", f"{shown(scope)} is not one of read, write, admin, delegate")
            )
    for index, zone in enumerate(zones):
        try:
            _grant(zone)
        except BadName as exc:
            violations.append(Violation(f"zones[{index}]", f"{shown(zone)} {exc}"))
    if violations:
        raise InvalidRequest(violations)


def _grant(zone: str) -> str:
    """``*``, ``*.example.test.`` (the zone and every zone below) or ``example.test.``."""
    if zone == ALL_ZONES:
        return zone
    if zone.startswith("*."):
        return "*." + normalize_name(zone[2:])
    return normalize_name(zone)
