"""The console's pure parts: form rows to a v2 body, violations in the form's words, the
timeline's geometry, where a sign-in may go back to, the links it may show."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from db.schemas import RequestEventPublic, RequestPublic
from service.console import forms, queries, signin
from service.core.errors import Violation
from service.core.settings import Settings

CAME = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_blank_rows_are_skipped_and_each_change_keeps_its_row_number() -> None:
    form = {
        "op": ["upsert", "upsert", "delete"],
        "name": ["", "www.example.test", "old.example.test"],
        "type": ["", "A", "CNAME"],
        "ttl": ["", " 300 ", ""],
        "values": ["", "192.0.2.1\r\n\r\n 192.0.2.2 ", ""],
    }

    body, numbers = forms.change_set(forms.rows_of(form), dry_run=True, force=False)

    assert numbers == [2, 3]
    assert json.loads(body) == {
        "changes": [
            {"op": "upsert", "name": "www.example.test", "type": "A", "values": ["192.0.2.1", "192.0.2.2"], "ttl": 300},
            {"op": "delete", "name": "old.example.test", "type": "CNAME"},
        ],
        "dry_run": True,
        "force": False,
    }


@pytest.mark.parametrize("ttl", ["soon", "²", "-1", "1" * 11, "3e2"])
def test_a_ttl_that_is_not_a_number_of_seconds_names_its_row_before_anything_is_sent(ttl: str) -> None:
    rows = [forms.Row("upsert", "a.example.test", "A", "60", "192.0.2.1"), forms.Row("add", "b.example.test", "A", ttl)]

    with pytest.raises(forms.BadRows) as refused:
        forms.change_set(rows, dry_run=True, force=False)

    assert refused.value.lines == [f"row 2, ttl: {ttl!r} is not a number of seconds"]


def test_violations_are_named_by_the_row_the_user_typed() -> None:
    violations = [
        Violation("changes[1].values[0]", "bad"),
        Violation("changes[0]", "conflicts"),
        Violation("force", "x"),
    ]

    assert forms.explain(violations, [2, 5]) == ["row 5, values[0]: bad", "row 2: conflicts", "force: x"]


def test_rows_of_a_form_with_ragged_columns_fill_with_blanks() -> None:
    rows = forms.rows_of({"op": ["add"], "name": ["a", "b"]})

    assert [(row.op, row.name, row.values) for row in rows] == [("add", "a", ""), ("", "b", "")]


def _request(*offsets_ms: float, steps: tuple[str, ...]) -> RequestPublic:
    events = [
        RequestEventPublic(at=CAME + timedelta(milliseconds=offset), step=step, component="api", detail={})
        for offset, step in zip(offsets_ms, steps, strict=True)
    ]
    return RequestPublic(
        request_id=uuid.uuid4(),
        source="api",
        client="c",
        operation="changeset",
        payload={},
        status="failed",
        attempts=1,
        error_code=None,
        error_detail=None,
        created_at=CAME,
        updated_at=CAME,
        changes=[],
        events=events,
    )


def test_the_timeline_is_drawn_to_scale_from_the_moment_the_request_came() -> None:
    drawn = queries.timeline(_request(0, 10, 40, steps=("received", "queued", "failed")))

    assert drawn.total_s == pytest.approx(0.04)
    assert [round(mark.x) for mark in drawn.marks] == [0, 250, 1000]
    assert [round(mark.start_x) for mark in drawn.marks] == [0, 0, 250]
    assert [round(mark.took_s * 1000) for mark in drawn.marks] == [0, 10, 30]
    assert [mark.trouble for mark in drawn.marks] == [False, False, True]
    assert drawn.ticks[0] == (0.0, "0 ms")
    assert 3 <= len(drawn.ticks) <= 6
    assert all(0 <= x <= 1000 for x, _ in drawn.ticks)


@pytest.mark.parametrize("total_ms", [0.4, 7, 999, 1000, 59_000, 3_600_000, 7 * 86_400_000])
def test_the_axis_has_a_few_round_marks_whatever_the_length(total_ms: float) -> None:
    drawn = queries.timeline(_request(0, total_ms, steps=("received", "succeeded")))

    assert 2 <= len(drawn.ticks) <= 6
    assert [x for x, _ in drawn.ticks] == sorted(x for x, _ in drawn.ticks)
    assert all(0 <= x <= 1000.001 for x, _ in drawn.ticks)
    assert len({label for _, label in drawn.ticks}) == len(drawn.ticks)


def test_a_timeline_of_one_instant_still_has_a_width() -> None:
    drawn = queries.timeline(_request(0, steps=("received",)))

    assert drawn.total_s > 0
    assert drawn.marks[0].x == 0


def test_a_refused_requests_violations_come_from_its_rejected_step() -> None:
    request = _request(0, 1, steps=("received", "rejected"))
    request.events[1].detail = {"violations": [{"field": "values[0]", "message": "not an address"}]}

    assert queries.violations(request) == [{"field": "values[0]", "message": "not an address"}]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ui/zones/example.test?cursor=x", "/ui/zones/example.test?cursor=x"),
        ("https://elsewhere.example/ui/", "/ui/requests"),
        ("//elsewhere.example/ui/", "/ui/requests"),
        ("/ui/\\elsewhere", "/ui/requests"),
        ("/api/v1/records", "/ui/requests"),
        ("", "/ui/requests"),
        (None, "/ui/requests"),
    ],
)
def test_signing_in_goes_back_to_console_pages_only(target: str | None, expected: str) -> None:
    assert signin.safe_next(target) == expected


def test_the_console_links_only_to_web_addresses() -> None:
    assert Settings(console_logs_url=" https://logs.example/q={request_id} ").console_logs_url.startswith("https://")
    with pytest.raises(ValidationError, match="http"):
        Settings(console_rabbitmq_url="javascript:alert(1)")


def test_a_time_without_a_zone_is_read_as_utc_and_a_bad_one_is_named() -> None:
    found: list[Violation] = []

    assert queries._moment("since", "2026-11-26T14:30", found) == datetime(2026, 11, 26, 14, 30, tzinfo=UTC)
    assert queries._moment("until", "2026-11-26T14:30+01:00", found) == datetime(2026, 11, 26, 13, 30, tzinfo=UTC)
    assert queries._moment("until", "tomorrow", found) is None
    assert found == [Violation("until", "'tomorrow' is not a time; use 2026-11-26T14:30 (UTC)")]


def test_a_full_page_links_to_the_older_requests_with_the_same_filters() -> None:
    rows = [
        queries.RequestRow(str(i), "failed", "changeset", "api", "c", None, CAME - timedelta(seconds=i), None)
        for i in range(queries.PAGE)
    ]
    asked = queries.RequestFilter(status="failed", zone="example.test")

    assert queries.older(asked, rows) == {"status": "failed", "zone": "example.test", "until": "2026-11-26T11:58:21"}
    assert queries.older(asked, rows[:-1]) is None
