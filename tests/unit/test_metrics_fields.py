"""The metrics' counter fields and histograms: pure arithmetic, no Redis."""

from __future__ import annotations

import pytest

from dropq.workers.metrics import fields


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "2xx"), (204, "2xx"), (429, "429"), (400, "4xx"), (401, "4xx"), (403, "4xx"), (500, "5xx"),
     (524, "5xx"), (None, "network"), (302, "4xx")],
)  # fmt: skip
def test_an_answer_status_falls_in_one_outcome_class(status: int | None, outcome: str) -> None:
    """2xx, 429, other 4xx, 5xx, no answer; a redirect (never followed) counts as a client-side refusal."""
    assert fields.request_outcome(status) == outcome
    assert fields.request_field("post", status) == f"POST|{outcome}"


@pytest.mark.parametrize(
    ("delay_s", "field"),
    [(0.0, "ready_delay|0.5"), (0.5, "ready_delay|0.5"), (0.51, "ready_delay|1"), (59.9, "ready_delay|60"),
     (1800.0, "ready_delay|1800"), (1800.1, "ready_delay|+Inf")],
)  # fmt: skip
def test_a_delay_lands_in_the_smallest_bucket_that_holds_it(delay_s: float, field: str) -> None:
    """Bounds are inclusive, like Prometheus's ``le``; past the last one, +Inf."""
    assert fields.delay_field(delay_s) == field


def test_histograms_are_cumulative_with_their_exact_sum() -> None:
    """Raw counts per value or bucket become cumulative buckets whose +Inf is the count."""
    stats = {"gets|0": 2, "gets|1": 3, "gets|4": 1, f"gets|{fields.GETS_CAP}": 1, fields.GETS_SUM: 40}
    buckets, total = fields.histogram(stats, "gets")
    as_dict = dict(buckets)
    assert as_dict["0"] == 2 and as_dict["1"] == 5 and as_dict["3"] == 5 and as_dict["4"] == 6
    assert as_dict[str(fields.GETS_CAP)] == 7 and as_dict["+Inf"] == 7 and total == 40
    delays = {"ready_delay|1": 1, "ready_delay|60": 2, "ready_delay|+Inf": 1, fields.DELAY_SUM_MS: 90_500}
    buckets, total = fields.histogram(delays, "ready_delay")
    as_dict = dict(buckets)
    assert as_dict["0.5"] == 0 and as_dict["1"] == 1 and as_dict["30"] == 1 and as_dict["60"] == 3
    assert as_dict["1800"] == 3 and as_dict["+Inf"] == 4 and total == 90.5
    assert [value for _, value in buckets] == sorted(value for _, value in buckets)


def test_the_ready_moment_is_known_for_a_push_and_for_a_poll_that_saw_the_batch_unready() -> None:
    """A push is the ready moment; two looks bracket it (midpoint); a first look that found it ready says nothing."""
    base = {"submitted_ms": 10_000, "fetched_ms": 40_000, "partial": False, "now_ms": 41_000}
    assert fields.ready_to_delivered_s(looked_ms=0, fetched_via=fields.FETCHED_BY_PUSH, **base) == 1.0
    # Unready at 20 s of age, ready at 30 s: ready at 25 s (35,000 ms), delivered at 41,000 ms.
    assert fields.ready_to_delivered_s(looked_ms=30_000, fetched_via=fields.FETCHED_BY_GET, **base) == 6.0
    assert fields.ready_to_delivered_s(looked_ms=0, fetched_via=fields.FETCHED_BY_GET, **base) is None
    assert fields.ready_to_delivered_s(looked_ms=30_000, fetched_via="", **base) is None
    partial = {**base, "partial": True}
    assert fields.ready_to_delivered_s(looked_ms=30_000, fetched_via=fields.FETCHED_BY_GET, **partial) is None


def test_closing_counts_records_the_close_and_only_known_observations() -> None:
    """Zero amounts are left out of the script argument; a failed batch observes no GETs and no delay."""
    done = fields.close_counters(final="done", enriched=3, not_found=0, failed=1, gets=2, delay_s=None)
    assert done == {"records|enriched": 3, "records|failed": 1, "batches|done": 1, "gets|2": 1, "gets|sum": 2}
    failed = fields.close_counters(final="failed", enriched=0, not_found=0, failed=5, gets=None, delay_s=None)
    assert failed == {"records|failed": 5, "batches|failed": 1}
    assert fields.encode({}) == ""
