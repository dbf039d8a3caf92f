"""De-duplication inside a job: the first index of every identity key, kept in Redis."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import redis

from dropq.workers import keys
from dropq.workers.jobs.scripts import load_script

__all__ = ["SeenRecords"]


class SeenRecords:
    """Answers "which record of this job first had this identity?" for many records in one round trip.

    Args:
        client: a Redis client.
        ttl_s: the TTL of the job's identity hash.
    """

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self._ttl_s = ttl_s
        self._script = load_script(client, "first_seen")

    def first_indexes(self, job_id: str, pairs: Sequence[tuple[str, int]]) -> list[int]:
        """For each ``(identity_key, index)``, the index of the job's first record with that key."""
        if not pairs:
            return []
        args: list[str | int] = [self._ttl_s]
        for identity, index in pairs:
            # Identity keys are contact data (an email, a name): Redis keeps only a digest of them.
            args += [hashlib.sha256(identity.encode()).hexdigest()[:32], index]
        return [int(i) for i in self._script(keys=[keys.job_seen_key(job_id)], args=args)]
