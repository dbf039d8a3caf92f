"""De-duplication inside a job: the first index of every identity key, kept in Redis as a keyed digest.

Identity keys are contact data (an email, a name and a company): Redis keeps
only an HMAC-SHA256 of each, keyed with the deployment's secret
(``DROPQ_DIGEST_SECRET``, by default derived from the API key), so a reader
of Redis cannot confirm a guessed name by hashing it.
"""

from __future__ import annotations

import hashlib
import hmac
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
        digest_key: the key of the digests (``Runtime.digest_key``).
    """

    def __init__(self, client: redis.Redis, ttl_s: int, digest_key: bytes) -> None:
        self._ttl_s = ttl_s
        self._key = digest_key
        self._script = load_script(client, "first_seen")

    def first_indexes(self, job_id: str, pairs: Sequence[tuple[str, int]]) -> list[int]:
        """For each ``(identity_key, index)``, the index of the job's first record with that key."""
        if not pairs:
            return []
        args: list[str | int] = [self._ttl_s]
        for identity, index in pairs:
            # Identity keys are contact data (an email, a name): Redis keeps only a keyed digest of them.
            args += [hmac.new(self._key, identity.encode(), hashlib.sha256).hexdigest()[:32], index]
        return [int(i) for i in self._script(keys=[keys.job_seen_key(job_id)], args=args)]
