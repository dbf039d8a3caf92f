"""De-duplication inside a job: the first index of every identity key, kept in Redis as a keyed digest.

Identity keys are contact data (an email, a name and a company): Redis keeps
only an HMAC-SHA256 of each, keyed with the deployment's secret
(``DROPQ_DIGEST_SECRET``, by default derived from the API key), so a reader
of Redis cannot confirm a guessed name by hashing it.

Compact: the digests of a job are spread over up to ``BUCKETS`` small hashes by their first two
bytes, each field the next ``FIELD_BYTES`` bytes (96 bits of the digest in all: no two of even a
billion identities meet by chance). A hash of at most 128 entries stays in Redis's listpack
encoding, about 17 bytes an identity instead of about 90 in one big hash, up to about 8 million
identities per job (past that, buckets turn into plain hashes: raise Redis's
``hash-max-listpack-entries`` for such jobs). A job touches one bucket per identity at first, so
a small job costs about a key per identity; the saving is for the large ones (measured by
``bench/seen_memory.py``: 32 bytes an identity at a million instead of 94, 23 at three million
instead of 104; 119 instead of 99 at 100,000). The job's set of touched buckets lets its finish delete them.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence

import redis

from dropq.workers import keys
from dropq.workers.jobs.scripts import load_script

__all__ = ["SeenRecords", "BUCKETS", "FIELD_BYTES", "bucket_keys", "forget"]

BUCKETS = 1 << 16
FIELD_BYTES = 10
# A record as first_seen.lua reads it: key position, digest field, input index (big-endian).
_RECORD = struct.Struct(f">I{FIELD_BYTES}sI")


class SeenRecords:
    """Answers "which record of this job first had this identity?" for many records in one round trip.

    Args:
        client: a Redis client.
        ttl_s: the TTL of the job's identity hashes.
        digest_key: the key of the digests (``Runtime.digest_key``).
        buckets: how many hashes a job's digests spread over (tests use fewer).
    """

    def __init__(self, client: redis.Redis, ttl_s: int, digest_key: bytes, buckets: int = BUCKETS) -> None:
        self._buckets = buckets
        self._ttl_s = ttl_s
        self._key = digest_key
        self._script = load_script(client, "first_seen")

    def first_indexes(self, job_id: str, pairs: Sequence[tuple[str, int]]) -> list[int]:
        """For each ``(identity_key, index)``, the index of the job's first record with that key.

        One call takes a window of records (produce asks 250 at a time): the script passes the buckets
        they touch to one SADD, which Lua's stack bounds to a few thousand.
        """
        if not pairs:
            return []
        positions: dict[int, int] = {}
        records: list[bytes] = []
        for identity, index in pairs:
            # Identity keys are contact data (an email, a name): Redis keeps only a keyed digest of them.
            digest = hmac.new(self._key, identity.encode(), hashlib.sha256).digest()
            bucket = int.from_bytes(digest[:2], "big") % self._buckets
            position = positions.setdefault(bucket, len(positions) + 2)
            records.append(_RECORD.pack(position, digest[2 : 2 + FIELD_BYTES], index))
        buckets = list(positions)
        script_keys = [keys.job_seen_key(job_id), *(keys.job_seen_bucket_key(job_id, b) for b in buckets)]
        numbers = struct.pack(f">{len(buckets)}H", *buckets)
        return [int(i) for i in self._script(keys=script_keys, args=[self._ttl_s, numbers, b"".join(records)])]


def bucket_keys(client: redis.Redis, job_id: str) -> list[str]:
    """The job's bucket hashes, from its set of touched buckets."""
    return [keys.job_seen_bucket_key(job_id, int(b)) for b in client.smembers(keys.job_seen_key(job_id))]  # type: ignore[union-attr]


def forget(client: redis.Redis, job_id: str, *, chunk: int = 1000) -> None:
    """Delete the job's digests (its finish: a finished job takes no new contact to compare)."""
    found = bucket_keys(client, job_id)
    for start in range(0, len(found), chunk):
        client.unlink(*found[start : start + chunk])
    client.unlink(keys.job_seen_key(job_id))
