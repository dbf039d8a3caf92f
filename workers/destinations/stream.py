"""The ``stream`` destination: every outcome of a job, appended once to a Redis stream.

``dropq enrich`` reads it to write its output file; any application can read it
with ``XREAD`` (the key is ``dropq:job-outcomes:{job_id}``, each entry one field
``o`` holding the outcome as JSON). The stream expires with the job; a reader
may trim what it consumed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import redis

from dropq.dropcontact import json_codec
from dropq.workers import keys
from dropq.workers.destinations.base import DestinationError

__all__ = ["StreamDestination"]

_SCRIPT = (Path(__file__).parent / "stream_append.lua").read_text()


class StreamDestination:
    """Appends outcomes to the job's stream exactly once per unit.

    Args:
        client: a Redis client.
        ttl_s: the stream's TTL, renewed on every append.
    """

    def __init__(self, client: redis.Redis, ttl_s: int, name: str = "stream") -> None:
        self.name = name
        self._redis = client
        self._ttl_s = ttl_s
        self._append = client.register_script(_SCRIPT)

    def deliver(self, job_id: str, unit_id: str, outcomes: Sequence[Mapping[str, Any]]) -> None:
        """Append the unit's outcomes unless they were appended before."""
        entries = [json_codec.dumps(o) for o in outcomes]
        script_keys = [keys.job_outcomes_key(job_id), keys.delivery_key(job_id, self.name)]
        try:
            self._append(keys=script_keys, args=[unit_id, self._ttl_s, *entries])
        except redis.RedisError as exc:
            raise DestinationError(self.name, f"Redis refused the append: {exc}") from exc

    def finish(self, job_id: str) -> None:
        """Nothing to assemble: readers see entries as they come."""
