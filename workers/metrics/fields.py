"""The fields of the metrics' counters in Redis: named here, written by the workers, read by ``dropq metrics``.

Two hashes hold them (``keys.stats_key`` and ``keys.api_calls_key``). The job scripts move the
``stats`` fields in the same atomic step as the ledger's counters, so a redelivered task never
counts twice and the totals agree with the ledgers. Histograms are kept as raw counts per value
(GETs) or per bucket (delays) and summed up into cumulative buckets only when scraped. Values in,
values out: no I/O here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from dropq.dropcontact.backoff import processing_estimate_s

__all__ = [
    "RECORD_STATUSES",
    "REQUEST_OUTCOMES",
    "REQUEST_KINDS",
    "BATCH_EVENTS",
    "DELIVERY_OUTCOMES",
    "GETS_CAP",
    "GETS_BUCKETS",
    "DELAY_BUCKETS_S",
    "FETCHED_BY_GET",
    "FETCHED_BY_PUSH",
    "RECEIVED",
    "CACHED",
    "JOBS_FINISHED",
    "GETS_SUM",
    "DELAY_SUM_MS",
    "record_field",
    "batch_field",
    "delivery_field",
    "gets_field",
    "delay_field",
    "request_outcome",
    "request_field",
    "segment_counters",
    "close_counters",
    "ready_to_delivered_s",
    "encode",
    "histogram",
    "int_fields",
]

# Every final outcome of a record (``jobs.outcomes.STATUSES``).
RECORD_STATUSES = ("enriched", "not_found", "rejected", "duplicate", "failed")
# The outcome classes of a request to the API; "network" is no answer at all (refused, timed out, reset).
REQUEST_OUTCOMES = ("2xx", "429", "4xx", "5xx", "network")
# The methods workers send (the webhook and subscription calls are the CLI's, not counted).
REQUEST_KINDS = ("POST", "GET")
# What happens to batches: created by produce or a split, closed done, failed or split.
BATCH_EVENTS = ("created", "done", "failed", "split")
DELIVERY_OUTCOMES = ("delivered", "failed")
# A batch's GETs above this count in the cap's own field (the sum stays exact).
GETS_CAP = 30
# The GETs-per-batch histogram's upper bounds, besides +Inf.
GETS_BUCKETS = (0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, GETS_CAP)
# The ready-to-delivered histogram's upper bounds in seconds, besides +Inf.
DELAY_BUCKETS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
# How a batch's results came (the batch hash's ``fetched_via``).
FETCHED_BY_GET = "get"
FETCHED_BY_PUSH = "push"

RECEIVED = "records|received"
CACHED = "records|cached"
JOBS_FINISHED = "jobs|finished"
GETS_SUM = "gets|sum"
DELAY_SUM_MS = "ready_delay|sum_ms"


def record_field(status: str) -> str:
    """The counter of records whose final outcome is ``status``."""
    return f"records|{status}"


def batch_field(event: str) -> str:
    """The counter of batches created or closed (``BATCH_EVENTS``)."""
    return f"batches|{event}"


def delivery_field(destination: str, *, failed: bool) -> str:
    """The counter of one destination's deliveries done, or given up."""
    return f"deliveries|{destination}|{DELIVERY_OUTCOMES[1] if failed else DELIVERY_OUTCOMES[0]}"


def gets_field(gets: int) -> str:
    """The counter of batches that took ``gets`` GETs (capped at ``GETS_CAP``)."""
    return f"gets|{min(max(0, gets), GETS_CAP)}"


def delay_field(delay_s: float) -> str:
    """The bucket counter of a ready-to-delivered delay: its smallest upper bound, or ``+Inf``."""
    bound = next((b for b in DELAY_BUCKETS_S if delay_s <= b), math.inf)
    return f"ready_delay|{_le(bound)}"


def request_outcome(status: int | None) -> str:
    """The outcome class of an API answer's HTTP status; None (no answer) is ``network``."""
    if status is None:
        return "network"
    if status == 429:
        return "429"
    if 200 <= status < 300:
        return "2xx"
    return "5xx" if status >= 500 else "4xx"


def request_field(method: str, status: int | None) -> str:
    """The counter of requests of one method with one outcome class."""
    return f"{method.upper()}|{request_outcome(status)}"


def segment_counters(
    *,
    received: int,
    rejected: int,
    duplicates: int,
    failed: int,
    has_batch: bool,
    cached_enriched: int = 0,
    cached_not_found: int = 0,
) -> dict[str, int]:
    """What a produced segment adds to the deployment's counters (records answered by the result cache too)."""
    counters = {
        RECEIVED: received,
        record_field("rejected"): rejected,
        record_field("duplicate"): duplicates,
        record_field("failed"): failed,
        record_field("enriched"): cached_enriched,
        record_field("not_found"): cached_not_found,
        CACHED: cached_enriched + cached_not_found,
    }
    if has_batch:
        counters[batch_field("created")] = 1
    return {name: amount for name, amount in counters.items() if amount}


def ready_to_delivered_s(
    *, submitted_ms: int, looked_ms: int, fetched_ms: int, fetched_via: str, partial: bool, now_ms: int
) -> float | None:
    """How long a batch's results waited from ready at the API to delivered here, when that is known.

    Known for a push (it comes when the batch is ready) and for a poll that saw the batch unready first
    (ready between the two looks: ``processing_estimate_s``); not for a first look that found it ready
    (ready at some time before) nor for forced partial results.
    """
    if partial or not fetched_ms or not submitted_ms:
        return None
    if fetched_via == FETCHED_BY_PUSH:
        ready_ms = fetched_ms
    elif fetched_via == FETCHED_BY_GET and looked_ms > submitted_ms:
        estimate_s = processing_estimate_s((looked_ms - submitted_ms) / 1000, (fetched_ms - submitted_ms) / 1000)
        ready_ms = submitted_ms + int(estimate_s * 1000)
    else:
        return None
    return max(0.0, (now_ms - ready_ms) / 1000)


def close_counters(
    *, final: str, enriched: int, not_found: int, failed: int, gets: int | None, delay_s: float | None
) -> dict[str, int]:
    """What closing a batch adds: its records by outcome, the close, its GETs and its delay when known."""
    counters = {
        record_field("enriched"): enriched,
        record_field("not_found"): not_found,
        record_field("failed"): failed,
        batch_field(final): 1,
    }
    if gets is not None:
        counters[gets_field(gets)] = 1
        counters[GETS_SUM] = gets
    if delay_s is not None:
        counters[delay_field(delay_s)] = 1
        counters[DELAY_SUM_MS] = int(delay_s * 1000)
    return {name: amount for name, amount in counters.items() if amount}


def encode(counters: Mapping[str, int]) -> str:
    """The counters as a script argument (JSON), or "" when there are none."""
    return json.dumps(dict(counters), separators=(",", ":")) if counters else ""


def int_fields(raw: Mapping[str, str]) -> dict[str, int]:
    """A counters hash read back, as integers (fields that are not integers are skipped)."""
    values: dict[str, int] = {}
    for name, value in raw.items():
        try:
            values[name] = int(value)
        except ValueError:
            continue
    return values


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else f"{bound:g}"


def histogram(stats: Mapping[str, int], kind: str) -> tuple[list[tuple[str, float]], float]:
    """Cumulative buckets (upper bound label, count) and the sum of the ``gets`` or ``ready_delay`` histogram.

    The ``+Inf`` bucket is the histogram's count.
    """
    if kind == "gets":
        exact = {int(name[5:]): n for name, n in stats.items() if name.startswith("gets|") and name[5:].isdigit()}
        buckets = [(f"{b}", float(sum(n for value, n in exact.items() if value <= b))) for b in GETS_BUCKETS]
        buckets.append(("+Inf", float(sum(exact.values()))))
        return buckets, float(stats.get(GETS_SUM, 0))
    if kind == "ready_delay":
        per_bucket = {name.split("|", 1)[1]: n for name, n in stats.items() if name.startswith("ready_delay|")}
        per_bucket.pop("sum_ms", None)
        running, buckets = 0, []
        for bound in (*DELAY_BUCKETS_S, math.inf):
            running += per_bucket.get(_le(bound), 0)
            buckets.append((_le(bound), float(running)))
        return buckets, stats.get(DELAY_SUM_MS, 0) / 1000
    raise ValueError(f"kind must be 'gets' or 'ready_delay', got {kind!r}")
