"""Reading webhook pushes in every documented shape (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from dropq.workers.webhooks import Push, parse_push

RECORDS = [{"first_name": "Ada", "custom_fields": {"dropq_ref": "0"}}]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            [{"id": "w1", "version": 1, "event_type": "enrich_api_result", "occurred_at": 1,
              "data": {"data": RECORDS, "request_id": "r1"}}],
            [Push("r1", RECORDS)],
        ),
        ({"event_type": "enrich_api_result", "data": {"data": RECORDS, "request_id": "r1"}}, [Push("r1", RECORDS)]),
        ({"data": RECORDS, "request_id": "r2", "success": True}, [Push("r2", RECORDS)]),
        ({"data": RECORDS}, [Push(None, RECORDS)]),
        ([{"event_type": "something_else", "data": {"data": RECORDS}}], []),
        ([1, "x", None], []),
        ({"detail": "nope"}, []),
    ],
)  # fmt: skip
def test_push_bodies_of_every_documented_shape_are_read(body: Any, expected: list[Push]) -> None:
    """The old event array, a single event and a bare results body all give the request's records."""
    assert parse_push(body) == expected


def test_several_events_in_one_push_are_all_read() -> None:
    """One call may carry several events."""
    body = [{"event_type": "enrich_api_result", "data": {"data": RECORDS, "request_id": r}} for r in ("a", "b")]
    assert [p.request_id for p in parse_push(body)] == ["a", "b"]
