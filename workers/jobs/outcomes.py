"""Outcomes waiting for delivery: one unit per batch (or per segment's rejects), one delivery per destination.

An outcome is what every destination receives for one input record, always with the keys of
``OUTCOME_KEYS`` in that order (``documented_outcome``), then ``duplicate_of``, ``rule`` or ``fetched_at``
when they apply::

    {"job_id": "...", "index": 12, "status": "enriched", "reason": null,
     "best_email": "ada@acme.example", "qualification": "nominative@pro",
     "record": {...the enriched record, custom_fields included...}, "input": {...}, "source": "api"}

``status`` is one of ``enriched``, ``not_found``, ``rejected``, ``duplicate``, ``failed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis

from dropq.dropcontact import json_codec
from dropq.workers import keys
from dropq.workers.jobs.scripts import load_script
from dropq.workers.jobs.watchdog import delivery_member
from dropq.workers.metrics.fields import delivery_field

__all__ = [
    "OutcomeStore",
    "STATUSES",
    "OUTCOME_KEYS",
    "documented_outcome",
    "batch_unit_id",
    "segment_unit_id",
    "job_of_unit",
]

STATUSES = ("enriched", "not_found", "rejected", "duplicate", "failed")
# Every outcome has these keys, in this order (None where they do not apply: a rejected record has no best_email).
OUTCOME_KEYS = ("job_id", "index", "status", "reason", "best_email", "qualification", "record", "input", "source")


def documented_outcome(outcome: Mapping[str, Any]) -> dict[str, Any]:
    """The outcome with every key of ``OUTCOME_KEYS`` (missing ones None), in order, then its other keys."""
    shaped = {key: outcome.get(key) for key in OUTCOME_KEYS}
    shaped.update((key, value) for key, value in outcome.items() if key not in shaped)
    return shaped


def batch_unit_id(batch_id: str) -> str:
    """The id of the unit of a batch's outcomes: the batch id (``{job}/{part}/{segment}``)."""
    return batch_id


def segment_unit_id(job_id: str, segment_id: str) -> str:
    """The id of the unit of a segment's rejected and duplicate records: ``{job}/{part}/{segment}/others``."""
    return f"{job_id}/{segment_id}/others"


def job_of_unit(unit_id: str) -> str:
    """The job a unit belongs to (job ids hold no ``/``)."""
    return unit_id.split("/", 1)[0]


class OutcomeStore:
    """Reads units and counts their deliveries.

    Args:
        client: a Redis client (``decode_responses=True``).
        ttl_s: the TTL of the delivery bookkeeping.
    """

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self._redis = client
        self._ttl_s = ttl_s
        self._done = load_script(client, "delivery_done")

    def load(self, unit_id: str) -> list[dict[str, Any]] | None:
        """The outcomes of a unit, or None when every destination already has them."""
        raw = self._redis.hget(keys.unit_key(unit_id), "payload")
        # Shaped here, the one door to every destination: each stage may build its outcomes its own way.
        return [documented_outcome(outcome) for outcome in json_codec.loads(raw)] if raw else None

    def is_delivered(self, job_id: str, unit_id: str, destination: str) -> bool:
        """Whether this destination's delivery of the unit was already counted."""
        return bool(self._redis.sismember(keys.job_deliveries_key(job_id), f"{unit_id}|{destination}"))

    def mark_delivered(self, job_id: str, unit_id: str, destination: str, *, gave_up: bool = False) -> bool:
        """Count the delivery once; the unit's data goes when its last destination is done."""
        script_keys = [
            keys.job_key(job_id),
            keys.job_deliveries_key(job_id),
            keys.unit_key(unit_id),
            keys.watchdog_key(),
            keys.stats_key(),
        ]
        args = [
            f"{unit_id}|{destination}",
            "1" if gave_up else "0",
            self._ttl_s,
            delivery_member(unit_id, destination),
            delivery_field(destination, failed=gave_up),
        ]
        return bool(self._done(keys=script_keys, args=args))
