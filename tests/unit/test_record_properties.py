"""Properties of preparing, batching and joining, over generated inputs (hypothesis)."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dropq.dropcontact.batching import split_into_segments
from dropq.dropcontact.joining import JoinStatus, join_results
from dropq.dropcontact.records import (
    CORRELATION_FIELD,
    MAX_BATCH_RECORDS,
    MAX_RECORD_BYTES,
    PreparedRecord,
    Rejection,
    prepare_records,
)

# Columns as users write them: documented names, aliases, and columns we don't know.
COLUMNS = [
    "first_name", "First Name", "last_name", "surname", "full_name", "email", "E-mail", "mail",
    "linkedin", "LinkedIn URL", "company", "company_name", "website", "Company Website", "domain",
    "siren", "siret", "job", "phone", "country", "notes", "Connected On",
]  # fmt: skip

SCALARS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["ada@example.com", "https://www.linkedin.com/in/ada", "acme.com", "  Acme  ", ""]),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=False),
    st.none(),
    st.booleans(),
)
CUSTOM_VALUES = st.one_of(
    st.text(max_size=20),
    st.integers(),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=3), max_size=2),
    # Now and then a value big enough to push the record over 15 kB.
    st.integers(min_value=5_000, max_value=20_000).map(lambda size: "é" * size),
)
WILD_ROWS = st.dictionaries(
    st.sampled_from([*COLUMNS, "custom_fields"]),
    SCALARS,
    max_size=8,
).flatmap(
    lambda row: st.dictionaries(st.text(min_size=1, max_size=10), CUSTOM_VALUES, max_size=3).map(
        lambda custom: {**row, "custom_fields": custom} if custom else row
    )
)
# Rows that usually pass: one identifier, a few text columns, custom_fields of strings, numbers and booleans.
IDENTIFIERS = st.sampled_from(
    [
        {"email": "ada@example.com"},
        {"E-mail": " Bob@Example.org "},
        {"company": "Acme"},
        {"Company Website": "https://www.acme.com/"},
        {"LinkedIn URL": "https://fr.linkedin.com/in/zoé"},
        {"siren": 552100554},
    ]
)
LIKELY_ROWS = st.tuples(
    IDENTIFIERS,
    st.dictionaries(st.sampled_from(["First Name", "last_name", "job", "country", "notes"]), st.text(max_size=20)),
    st.dictionaries(
        st.text(min_size=1, max_size=10),
        st.one_of(st.text(max_size=20), st.integers(), st.booleans(), CUSTOM_VALUES),
        max_size=3,
    ),
).map(lambda parts: {**parts[1], **parts[0], "custom_fields": parts[2]})
ROWS = st.one_of(LIKELY_ROWS, LIKELY_ROWS, WILD_ROWS)
PROPERTY_SETTINGS = settings(max_examples=100, deadline=None)


def _prepare(rows: list[dict[str, Any]]) -> list[PreparedRecord | Rejection]:
    return list(prepare_records(rows, correlation_id=lambda index: f"job-1:{index}"))


@PROPERTY_SETTINGS
@given(st.lists(ROWS, max_size=40))
def test_every_row_gets_exactly_one_outcome_and_every_prepared_record_fits(rows: list[dict[str, Any]]) -> None:
    """Each row is prepared or rejected, once, in order; a prepared record is within 15 kB as sent."""
    outcomes = _prepare(rows)
    assert [outcome.index for outcome in outcomes] == list(range(len(rows)))
    for outcome in outcomes:
        if isinstance(outcome, Rejection):
            assert outcome.message.startswith(f"record {outcome.index}: ")
            continue
        encoded = json.dumps(outcome.payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        assert outcome.size_bytes == len(encoded) <= MAX_RECORD_BYTES
        assert outcome.payload["custom_fields"][CORRELATION_FIELD] == f"job-1:{outcome.index}"
        assert all(isinstance(value, str) for value in outcome.payload["custom_fields"].values())
        assert all(isinstance(value, str) for key, value in outcome.payload.items() if key != "custom_fields")


@PROPERTY_SETTINGS
@given(st.lists(ROWS, max_size=60), st.integers(min_value=1, max_value=MAX_BATCH_RECORDS))
def test_every_input_item_lands_in_exactly_one_segment_in_order(rows: list[dict[str, Any]], max_records: int) -> None:
    """Segments partition the input into consecutive runs; each batch is full but the last, within the limits."""
    outcomes = _prepare(rows)
    segments = list(split_into_segments(iter(outcomes), max_records=max_records))
    runs = [sorted([*segment.records, *segment.others], key=lambda item: item.index) for segment in segments]
    assert [item for run in runs for item in run] == outcomes
    assert all(len(segment.records) == max_records for segment in segments[:-1])
    assert all(
        segment.received > 0 and len(segment.records) <= max_records <= MAX_BATCH_RECORDS for segment in segments
    )
    assert all(record.size_bytes <= MAX_RECORD_BYTES for segment in segments for record in segment.records)


@PROPERTY_SETTINGS
@given(st.integers(min_value=0, max_value=1_200), st.integers(min_value=1, max_value=MAX_BATCH_RECORDS))
def test_batch_count_is_the_ceiling_of_records_over_batch_size(count: int, max_records: int) -> None:
    """No batch is wasted: the number of batches is the least that can hold every record."""
    records = (PreparedRecord(index, {"company": "x"}, None, 20) for index in range(count))
    batches = sum(1 for segment in split_into_segments(records, max_records=max_records) if segment.records)
    assert batches == -(-count // max_records)


def _as_the_api_returns_it(payload: dict[str, Any], rng: random.Random, *, keep_ids: bool) -> dict[str, Any]:
    """What the API might send back: keys dropped, values rewritten, an email list, maybe no custom_fields."""
    result: dict[str, Any] = {}
    for key, value in payload.items():
        if key == "custom_fields":
            if keep_ids:
                result["custom_fields"] = dict(value)
        elif rng.random() < 0.7:
            result[key] = value.title() if key != "website" else f"www.{value}"
    if rng.random() < 0.5:
        result["email"] = [{"email": "x@example.com", "qualification": rng.choice(["nominatif@pro", "catch-all@pro"])}]
    return result


@PROPERTY_SETTINGS
@given(
    st.lists(ROWS, max_size=40),
    st.randoms(use_true_random=False),
    st.sampled_from(["in_order", "in_order_some_ids_dropped", "shuffled", "shuffled_with_losses"]),
)
def test_joining_is_exact_whatever_the_api_omits_or_rewrites(
    rows: list[dict[str, Any]], rng: random.Random, scenario: str
) -> None:
    """Every result returns to the record it came from; a record whose result is lost is ``missing``."""
    sent = [outcome.payload for outcome in _prepare(rows) if isinstance(outcome, PreparedRecord)]
    expected: list[dict[str, Any] | None] = []
    for position, payload in enumerate(sent):
        keep_ids = scenario != "in_order_some_ids_dropped" or rng.random() < 0.5
        expected.append({**_as_the_api_returns_it(payload, rng, keep_ids=keep_ids), "_origin": position})
    results = [item for item in expected if item is not None]
    if scenario.startswith("shuffled"):
        rng.shuffle(results)
    if scenario == "shuffled_with_losses":
        lost = {id(item) for item in results if rng.random() < 0.3}
        results = [item for item in results if id(item) not in lost]
        expected = [item if item is not None and id(item) not in lost else None for item in expected]

    joined = join_results(sent, results)

    assert [item.index for item in joined] == list(range(len(sent)))
    assert [item.input for item in joined] == sent
    assert [item.result for item in joined] == expected
    assert all((item.status is JoinStatus.MISSING) == (item.result is None) for item in joined)
