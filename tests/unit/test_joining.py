"""Joining: results back to the rows they came from, by index checked against the correlation id."""

from __future__ import annotations

from typing import Any

import pytest

from dropq.dropcontact.joining import JoinStatus, correlation_id_of, join_results
from dropq.dropcontact.records import CORRELATION_FIELD


def _sent(*ids: str) -> list[dict[str, Any]]:
    return [{"email": f"{ref}@example.com", "custom_fields": {CORRELATION_FIELD: ref}} for ref in ids]


def _result(ref: str | None, *, email: bool = True, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"first_name": "Ada", **extra}
    if ref is not None:
        result["custom_fields"] = {CORRELATION_FIELD: ref}
    if email:
        result["email"] = [{"email": f"{ref}@example.com", "qualification": "nominative@pro"}]
    return result


def _joined_ids(sent: list[dict[str, Any]], results: list[dict[str, Any]]) -> list[str | None]:
    return [correlation_id_of(item.result) if item.result else None for item in join_results(sent, results)]


def test_results_in_order_join_by_index() -> None:
    """The documented case: ``data[i]`` is the result of the i-th record sent."""
    joined = join_results(_sent("a", "b"), [_result("a"), _result("b")])
    assert [(item.index, item.correlation_id, item.status) for item in joined] == [
        (0, "a", JoinStatus.ENRICHED),
        (1, "b", JoinStatus.ENRICHED),
    ]
    assert joined[0].input == _sent("a")[0]


def test_shuffled_results_fall_back_to_the_correlation_id() -> None:
    """When the index disagrees with the id, the id wins."""
    assert _joined_ids(_sent("a", "b", "c"), [_result("c"), _result("a"), _result("b")]) == ["a", "b", "c"]


def test_results_without_custom_fields_join_by_index() -> None:
    """If the API drops custom_fields, the documented order is trusted."""
    joined = join_results(_sent("a", "b"), [_result(None, company="A"), _result(None, company="B")])
    assert [item.result["company"] if item.result else None for item in joined] == ["A", "B"]


def test_a_missing_result_is_reported_not_dropped() -> None:
    """Fewer results than records: the orphan is ``missing``, with its input kept."""
    joined = join_results(_sent("a", "b", "c"), [_result("a"), _result("c")])
    assert [item.status for item in joined] == [JoinStatus.ENRICHED, JoinStatus.MISSING, JoinStatus.ENRICHED]
    assert joined[1].result is None
    assert joined[1].input["custom_fields"][CORRELATION_FIELD] == "b"


def test_an_index_result_carrying_another_records_id_is_not_stolen() -> None:
    """A result without id at index i is not given to record i when another result carries i's id."""
    assert _joined_ids(_sent("a", "b"), [{"first_name": "?"}, _result("a")]) == ["a", None]


def test_results_that_belong_to_nobody_are_ignored() -> None:
    """Extra results with foreign ids join nothing."""
    joined = join_results(_sent("a"), [_result("zzz"), _result("a")])
    assert [correlation_id_of(item.result or {}) for item in joined] == ["a"]


def test_each_result_joins_at_most_one_record() -> None:
    """A result is used once even when two records claim the same id."""
    joined = join_results(_sent("a", "a"), [_result("a")])
    assert [item.status for item in joined] == [JoinStatus.ENRICHED, JoinStatus.MISSING]


@pytest.mark.parametrize(
    ("result", "status"),
    [
        (_result("a"), JoinStatus.ENRICHED),
        (_result("a", email=False), JoinStatus.NOT_FOUND),
        ({**_result("a", email=False), "email": []}, JoinStatus.NOT_FOUND),
        ({**_result("a", email=False), "email": "a@example.com"}, JoinStatus.NOT_FOUND),
        ({**_result("a", email=False), "email": [{"email": "a@x.example", "qualification": "invalid"}]},
         JoinStatus.NOT_FOUND),
        ({**_result("a", email=False), "email": [{"email": "a@yopmail.com", "qualification": "nominative@disposable"},
                                                  {"email": "b@x.example", "qualification": "Do_Not_Contact@pro"}]},
         JoinStatus.NOT_FOUND),
        ({**_result("a", email=False), "email": [{"email": "a@x.example", "qualification": "invalid@invalid"},
                                                  {"email": "b@x.example", "qualification": "catch_all@pro"}]},
         JoinStatus.ENRICHED),
    ],
)  # fmt: skip
def test_status_says_whether_a_usable_email_was_found(result: dict[str, Any], status: JoinStatus) -> None:
    """Enriched means a usable email came back; an echoed input string or unusable addresses alone are not_found."""
    assert join_results(_sent("a"), [result])[0].status is status


def test_normalised_values_do_not_disturb_the_join() -> None:
    """The API rewrites names, domains and LinkedIn URLs; the join never looks at them."""
    sent = [{"first_name": "ada", "website": "example.com", "custom_fields": {CORRELATION_FIELD: "a"}}]
    result = {"first_name": "Ada", "website": "www.example.com", "custom_fields": {CORRELATION_FIELD: "a"}}
    assert join_results(sent, [result])[0].result == result


def test_emails_are_parsed_and_the_best_one_is_at_hand() -> None:
    """A joined record exposes its typed emails and the best of them."""
    result = _result("a", email=False)
    result["email"] = [
        {"email": "contact@example.com", "qualification": "generique@pro"},
        {"email": "ada@example.com", "qualification": "nominatif@pro"},
    ]
    joined = join_results(_sent("a"), [result])[0]
    assert [email.email for email in joined.emails] == ["contact@example.com", "ada@example.com"]
    assert joined.best_email is not None
    assert joined.best_email.email == "ada@example.com"


@pytest.mark.parametrize(
    ("record", "ref"),
    [
        ({"custom_fields": {CORRELATION_FIELD: "x"}}, "x"),
        ({"custom_fields": {CORRELATION_FIELD: 12}}, "12"),
        ({"custom_fields": {CORRELATION_FIELD: True}}, None),
        ({"custom_fields": "x"}, None),
        ({}, None),
    ],
)
def test_correlation_id_is_read_defensively(record: dict[str, Any], ref: str | None) -> None:
    """Odd shapes give None rather than an exception."""
    assert correlation_id_of(record) == ref
