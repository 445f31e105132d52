"""The API's window of recently read clients: revocation and rotation within the window, wrong
secrets refused at once, unknown key ids never kept."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from db.models import ApiClient
from service.core.errors import Unauthorized
from service.registry.clients import Principal, RecentKeys, hash_key

PEPPER = b"pepper"
KEY = "hm_0123456789ab_" + "k" * 43


class Database:
    """Stands in for the api_client table: what a session's query finds, and how often it is asked."""

    def __init__(self) -> None:
        self.revoked = False
        self.reads = 0

    def session(self) -> Any:
        database = self

        class Session:
            def __enter__(self) -> Session:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def exec(self, statement: object) -> Any:
                database.reads += 1
                client = ApiClient(
                    name="team-web",
                    key_id=KEY.split("_")[1],
                    key_hash=hash_key(KEY, PEPPER),
                    scopes=["write"],
                    zones=["example.test."],
                    revoked_at=datetime.now(UTC) if database.revoked else None,
                )
                return SimpleNamespace(first=lambda: client)

        return Session()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_seen_within_the_window_is_not_read_again() -> None:
    database, clock = Database(), Clock()
    recent = RecentKeys(1.0, clock)
    first = recent.authenticate(database.session, KEY, PEPPER)
    clock.now += 0.5
    assert (
        recent.authenticate(database.session, KEY, PEPPER)
        == first
        == Principal("team-web", frozenset({"write"}), ("example.test.",))
    )
    assert database.reads == 1


def test_a_revocation_takes_effect_once_the_window_has_passed() -> None:
    database, clock = Database(), Clock()
    recent = RecentKeys(1.0, clock)
    recent.authenticate(database.session, KEY, PEPPER)
    database.revoked = True
    clock.now += 1.0
    with pytest.raises(Unauthorized):
        recent.authenticate(database.session, KEY, PEPPER)
    assert database.reads == 2


def test_a_wrong_secret_for_a_kept_key_id_is_refused_without_a_read() -> None:
    database, clock = Database(), Clock()
    recent = RecentKeys(1.0, clock)
    recent.authenticate(database.session, KEY, PEPPER)
    with pytest.raises(Unauthorized):
        recent.authenticate(database.session, KEY[:-1] + "x", PEPPER)
    assert database.reads == 1


def test_a_window_of_zero_reads_every_time() -> None:
    database, clock = Database(), Clock()
    recent = RecentKeys(0, clock)
    recent.authenticate(database.session, KEY, PEPPER)
    recent.authenticate(database.session, KEY, PEPPER)
    assert database.reads == 2
    assert recent.kept(KEY, PEPPER) is None
