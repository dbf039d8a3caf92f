"""The pure part of what ``dropq enrich`` tells a script: --fail-on, the exit status, the summary's shape."""

from __future__ import annotations

from collections import Counter

import pytest

from dropq.cli.summary import SOME_ROWS_FAILED, exit_status_for, parse_fail_on, summary_of


@pytest.mark.parametrize(
    ("text", "statuses"),
    [
        ("failed", {"failed"}),
        ("rejected, failed", {"rejected", "failed"}),
        ("Duplicate,NOT_FOUND", {"duplicate", "not_found"}),
        ("none", set()),
        ("", set()),
    ],
)
def test_fail_on_reads_a_comma_list_of_statuses(text: str, statuses: set[str]) -> None:
    """Names are trimmed and case-folded; `none` and an empty list fail on nothing."""
    assert parse_fail_on(text) == statuses


@pytest.mark.parametrize("text", ["enriched", "failed,oops", "none,failed"])
def test_fail_on_refuses_what_is_not_a_failing_status(text: str) -> None:
    """enriched never fails a run; an unknown name (or none mixed with names) is refused, the valid ones listed."""
    with pytest.raises(ValueError, match="not_found"):
        parse_fail_on(text)


@pytest.mark.parametrize(
    ("counts", "fail_on", "status"),
    [
        ({"enriched": 3}, {"failed"}, 0),
        ({"enriched": 3, "failed": 1}, {"failed"}, SOME_ROWS_FAILED),
        ({"rejected": 2, "failed": 0}, {"failed"}, 0),
        ({"rejected": 2}, {"rejected", "failed"}, SOME_ROWS_FAILED),
        ({"failed": 5}, set(), 0),
    ],
)
def test_the_exit_status_is_3_only_when_a_row_has_a_fail_on_status(
    counts: dict[str, int], fail_on: set[str], status: int
) -> None:
    """A count of zero does not fail; any row in a named status does."""
    assert exit_status_for(counts, fail_on) == status


def test_a_finished_summary_adds_up_and_names_duplicates_as_the_ledger_does() -> None:
    """received is the sum of the five statuses; duplicate rows are counted under `duplicates`."""
    counts = Counter({"enriched": 4, "not_found": 1, "rejected": 2, "duplicate": 1, "failed": 1})
    summary = summary_of(
        state="finished", exit_status=3, job_id="j", output="out.csv", counts=counts, sent=8, unreadable=1,
        credits_used=5, duration_s=1.23456, fail_on={"failed"},
    )  # fmt: skip
    assert summary["received"] == 9 == sum(summary[k] for k in ("enriched", "not_found", "rejected", "duplicates",
                                                                  "failed"))  # fmt: skip
    assert (summary["duplicates"], summary["unreadable"], summary["duration_s"]) == (1, 1, 1.235)
    assert summary["fail_on"] == ["failed"] and "error" not in summary


def test_a_summary_of_a_run_that_did_not_finish_has_its_error_and_no_counts() -> None:
    """state error: the message, and no count a script could mistake for a result."""
    summary = summary_of(state="error", exit_status=1, job_id=None, output=None, duration_s=0.1, error="no Redis")
    assert summary["error"] == "no Redis" and "received" not in summary and "enriched" not in summary
