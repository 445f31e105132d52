"""A TSIG secret never leaves the secrets provider: not in a log line, an API answer or a row."""

from __future__ import annotations

import httpx
import psycopg2
import pytest

from tests.support import (
    KEY,
    STALE_KEY,
    STALE_ZONE,
    TEST_PEPPER,
    WRONG_SECRET,
    ZONE,
    Bind,
    Process,
    unique_label,
    wait_for_terminal,
)

pytestmark = pytest.mark.integration


def test_no_tsig_secret_appears_in_logs_answers_or_stored_rows(
    stack: httpx.Client, bind: Bind, api: Process, worker: Process, database_url: str, admin_key: str
) -> None:
    answers = []
    for zone in (ZONE, STALE_ZONE):  # one that succeeds, one whose signature is refused
        answer = stack.post(
            "/api/v1/records", json={"name": f"{unique_label('s')}.{zone}", "type": "TXT", "values": ["x"]}
        )
        answers.append(answer.text)
        wait_for_terminal(stack, answer.json()["request_id"])
        answers.append(stack.get(answer.json()["status_url"]).text)
    answers.append(stack.get("/api/v1/zones").text)
    answers.append(stack.get("/api/v1/records").text)
    answers.append(stack.get("/api/v1/clients").text)
    answers.append(stack.post("/api/v1/records", content=b"{broken").text)  # an error answer too

    dsn = database_url.replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(dsn, connect_timeout=5) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT string_agg(t, E'\\n') FROM ("
            " SELECT row_to_json(z)::text AS t FROM zone z"
            " UNION ALL SELECT row_to_json(r)::text FROM rrset r"
            " UNION ALL SELECT row_to_json(q)::text FROM request q"
            " UNION ALL SELECT row_to_json(e)::text FROM request_event e"
            " UNION ALL SELECT row_to_json(c)::text FROM api_client c) rows"
        )
        stored = cursor.fetchone()[0]

    places = {
        "API answers": "\n".join(answers),
        "API log": api.log_path.read_text(),
        "worker log": worker.log_path.read_text(),
        "database rows": stored,
    }
    assert "tsig_bad_signature" in places["database rows"]  # the refused request was recorded
    for secret in (bind.secret(KEY), bind.secret(STALE_KEY), WRONG_SECRET, admin_key, TEST_PEPPER):
        for place, text in places.items():
            assert secret not in text, f"a TSIG secret appears in the {place}"
