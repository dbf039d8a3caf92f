"""Packing a job's input into API-sized batches, as a stream (pure).

``split_into_segments`` is the packing the pipeline runs: it cuts a stream of
items in input order into segments, each holding at most one batch of records
to send (at most ``max_records``) and the items that are not sent (rejections,
duplicates) that came along between them. A segment closes as soon as its
batch is full; the last holds the rest. It holds one segment at a time, so a
million records pass through in constant memory.

Oversized records are rejected by ``prepare_record`` and never reach it; one
that does is a bug upstream and stops the stream loudly rather than being
dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from dropq.dropcontact.records import MAX_BATCH_RECORDS, MAX_RECORD_BYTES, PreparedRecord

__all__ = ["Segment", "split_into_segments", "batch_payload"]

T = TypeVar("T")


@dataclass(slots=True)
class Segment(Generic[T]):
    """A run of consecutive input items: ``records`` is one batch to send (maybe empty), ``others`` the rest.

    Args:
        records: the records to send, in input order; at most ``max_records``.
        others: the items not sent (rejections, duplicates), in input order.
    """

    records: list[PreparedRecord] = field(default_factory=list)
    others: list[T] = field(default_factory=list)

    @property
    def received(self) -> int:
        """How many input items the segment covers."""
        return len(self.records) + len(self.others)


def split_into_segments(
    items: Iterable[PreparedRecord | T],
    *,
    max_records: int = MAX_BATCH_RECORDS,
) -> Iterator[Segment[T]]:
    """Yield consecutive segments, each with at most one batch of ``max_records`` records, in input order.

    Args:
        items: prepared records to send and any other items, in input order (consumed lazily).
        max_records: the batch size, from 1 to the API's limit of 250.

    Returns:
        An iterator of non-empty segments; every item lands in exactly one of them, and every
        segment but the last holds a full batch.

    Raises:
        ValueError: ``max_records`` is outside 1..250, or a record is over the
            API's size limit (``prepare_record`` should have rejected it).
    """
    if not 1 <= max_records <= MAX_BATCH_RECORDS:
        raise ValueError(f"max_records must be between 1 and {MAX_BATCH_RECORDS}, got {max_records!r}")
    return _segments(items, max_records)


def _segments(items: Iterable[PreparedRecord | T], max_records: int) -> Iterator[Segment[T]]:
    # A separate generator so that split_into_segments checks its arguments when called, not at the first next().
    segment: Segment[T] = Segment()
    for item in items:
        if not isinstance(item, PreparedRecord):
            segment.others.append(item)
            continue
        if item.size_bytes > MAX_RECORD_BYTES:
            raise ValueError(
                f"record {item.index} is {item.size_bytes} bytes, over the {MAX_RECORD_BYTES}-byte limit; "
                "prepare_record rejects such records"
            )
        segment.records.append(item)
        if len(segment.records) == max_records:
            yield segment
            segment = Segment()
    if segment.received:
        yield segment


def batch_payload(batch: Iterable[PreparedRecord]) -> list[dict[str, Any]]:
    """Return the ``data`` array to submit for a batch.

    Args:
        batch: the records of one segment.

    Returns:
        The records' payloads, in order.
    """
    return [record.payload for record in batch]
