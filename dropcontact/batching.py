"""Packing prepared records into API-sized batches, as a stream.

``split_into_batches`` holds one batch at a time, so a million records pass
through in constant memory, and yields records in input order. Oversized
records are rejected by ``prepare_record`` and never reach it; one that does is
a bug upstream and stops the stream loudly rather than being dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from dropcontact.records import MAX_BATCH_RECORDS, MAX_RECORD_BYTES, PreparedRecord

__all__ = ["split_into_batches", "batch_payload"]


def split_into_batches(
    records: Iterable[PreparedRecord],
    *,
    max_records: int = MAX_BATCH_RECORDS,
) -> Iterator[list[PreparedRecord]]:
    """Yield consecutive batches of at most ``max_records`` records, in input order.

    Args:
        records: prepared records, in any number (consumed lazily).
        max_records: the batch size, from 1 to the API's limit of 250.

    Returns:
        An iterator of non-empty lists; every record lands in exactly one of them.

    Raises:
        ValueError: ``max_records`` is outside 1..250, or a record is over the
            API's size limit (``prepare_record`` should have rejected it).
    """
    if not 1 <= max_records <= MAX_BATCH_RECORDS:
        raise ValueError(f"max_records must be between 1 and {MAX_BATCH_RECORDS}, got {max_records!r}")
    return _batches(records, max_records)


def _batches(records: Iterable[PreparedRecord], max_records: int) -> Iterator[list[PreparedRecord]]:
    # A separate generator so that split_into_batches checks its arguments when called, not at the first next().
    batch: list[PreparedRecord] = []
    for record in records:
        if record.size_bytes > MAX_RECORD_BYTES:
            raise ValueError(
                f"record {record.index} is {record.size_bytes} bytes, over the {MAX_RECORD_BYTES}-byte limit; "
                "prepare_record rejects such records"
            )
        batch.append(record)
        if len(batch) == max_records:
            yield batch
            batch = []
    if batch:
        yield batch


def batch_payload(batch: Iterable[PreparedRecord]) -> list[dict[str, Any]]:
    """Return the ``data`` array to submit for a batch.

    Args:
        batch: one batch from ``split_into_batches``.

    Returns:
        The records' payloads, in order.
    """
    return [record.payload for record in batch]
