"""``describe_enrich_call``: what Celery shows of a dropq.enrich call, a count and the options, never a contact."""

from __future__ import annotations

from typing import Any

import pytest

from dropq.workers.redaction import describe_enrich_call


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        ((), {"contacts": [{"email": "a@b.c"}] * 3, "job_id": "j1"}, "{'contacts': <3 contacts>, 'job_id': 'j1'}"),
        (([{"email": "a@b.c"}], "j2"), {}, "{'contacts': <1 contacts>, 'job_id': 'j2'}"),
        ((), {"contacts": "not a list"}, "{'contacts': <hidden>}"),
        ((), {"contacts": [], "crm_owner": "ada@example.org"}, "{'contacts': <0 contacts>, 'crm_owner': <hidden>}"),
        (
            (),
            {"contacts": [], "destinations": ["jsonl", "csv"]},
            "{'contacts': <0 contacts>, 'destinations': ['jsonl', 'csv']}",
        ),
        (
            (),
            {"contacts": [], "callback": {"task": "crm.done", "extra": {"email": "x@y.z"}}},
            "{'contacts': <0 contacts>, 'callback': <hidden>}",
        ),
        ((), {"contacts": [], "job_id": "x" * 200}, "{'contacts': <0 contacts>, 'job_id': <hidden>}"),
    ],
)
def test_a_call_is_described_without_its_contacts(args: tuple[Any, ...], kwargs: dict[str, Any], expected: str) -> None:
    """Contacts become a count; options show; anything unknown, nested or long is hidden."""
    argsrepr, kwargsrepr = describe_enrich_call(args, kwargs)
    assert argsrepr == "()"
    assert kwargsrepr == expected


def test_extra_positional_arguments_are_counted_not_shown() -> None:
    """Positional arguments past dropq.enrich's parameters are only counted."""
    argsrepr, _ = describe_enrich_call([[]] + ["x"] * 10, None)
    assert argsrepr == "(<2 more>)"
