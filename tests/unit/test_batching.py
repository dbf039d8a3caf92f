"""Batching: sizes, order, streaming and the defensive checks."""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Iterator

import pytest

from dropq.dropcontact.batching import Segment, batch_payload, split_into_segments
from dropq.dropcontact.records import MAX_RECORD_BYTES, PreparedRecord, prepare_record


def split_into_batches(
    items: Iterator[PreparedRecord] | list[PreparedRecord], max_records: int = 250
) -> Iterator[list[PreparedRecord]]:
    """The batches of the segments (records only: every segment holds a batch)."""
    return (segment.records for segment in split_into_segments(items, max_records=max_records))


def _records(count: int, start: int = 0) -> Iterator[PreparedRecord]:
    for index in range(start, start + count):
        record = prepare_record({"email": f"p{index}@example.com"}, index=index, correlation_id=f"job:{index}")
        assert isinstance(record, PreparedRecord)
        yield record


@pytest.mark.parametrize(
    ("count", "max_records", "sizes"),
    [
        (0, 250, []),
        (1, 250, [1]),
        (250, 250, [250]),
        (251, 250, [250, 1]),
        (600, 250, [250, 250, 100]),
        (10, 3, [3, 3, 3, 1]),
        (5, 1, [1, 1, 1, 1, 1]),
    ],
)
def test_batches_are_full_but_the_last(count: int, max_records: int, sizes: list[int]) -> None:
    """Records fill batches of ``max_records`` in turn; only the last may be short, none is empty."""
    batches = list(split_into_batches(_records(count), max_records=max_records))
    assert [len(batch) for batch in batches] == sizes


def test_order_is_preserved_across_batches() -> None:
    """Concatenating the batches gives back the input, in order."""
    batches = list(split_into_batches(_records(777)))
    assert [record.index for batch in batches for record in batch] == list(range(777))


def test_batching_is_lazy_and_streams() -> None:
    """A batch comes out before the input is exhausted: an endless input still yields batches."""
    endless = (record for record in _records(10**9))
    first, second = itertools.islice(split_into_batches(endless, max_records=250), 2)
    assert first[0].index == 0
    assert second[0].index == 250


@pytest.mark.parametrize("max_records", [0, -1, 251])
def test_batch_size_outside_the_apis_limit_is_refused_at_once(max_records: int) -> None:
    """A batch size the API would refuse raises when called, not at the first batch."""
    with pytest.raises(ValueError, match="max_records must be between 1 and 250"):
        split_into_segments([], max_records=max_records)


def test_an_oversized_record_stops_the_stream_loudly() -> None:
    """A record over the limit is a bug upstream: raise rather than drop it silently."""
    oversized = PreparedRecord(5, {"company": "x"}, None, MAX_RECORD_BYTES + 1)
    with pytest.raises(ValueError, match="record 5 is 15361 bytes"):
        list(split_into_batches([*_records(2), oversized]))


def test_batch_payload_is_the_data_array() -> None:
    """The data to submit is each record's payload, in order."""
    batch = next(split_into_batches(_records(3)))
    assert batch_payload(batch) == [record.payload for record in batch]


def test_memory_stays_flat_whatever_the_input_size() -> None:
    """Streaming 100,000 records holds about one batch at a time, not the input."""
    # Given a lazy input far larger than a batch
    records = (PreparedRecord(index, {"email": f"p{index}@example.com"}, None, 40) for index in range(100_000))
    # When it is batched under tracemalloc
    tracemalloc.start()
    try:
        count = sum(len(batch) for batch in split_into_batches(records))
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then every record went through while the peak stayed near one batch's worth
    assert count == 100_000
    assert peak_bytes < 1_000_000


def test_items_that_are_not_sent_ride_in_the_segment_where_they_occur() -> None:
    """Rejections between records stay in their segment, in order; a trailing one closes a segment of its own."""
    records = list(_records(5))
    items: list[PreparedRecord | str] = [records[0], "r1", records[1], records[2], "r2", records[3], records[4], "r3"]
    segments = list(split_into_segments(items, max_records=2))
    assert segments == [
        Segment(records[0:2], ["r1"]),
        Segment(records[2:4], ["r2"]),
        Segment(records[4:5], ["r3"]),
    ]
    assert [segment.received for segment in segments] == [3, 3, 2]
    only_rejected = list(split_into_segments(["a", "b"], max_records=2))
    assert only_rejected == [Segment([], ["a", "b"])]
