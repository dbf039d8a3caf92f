"""The result cache in a Redis of its own: one string per entry, expiring at its maximum age.

That Redis must evict (``maxmemory`` with an eviction policy such as
``allkeys-lru``): a cache is worth less than the work in flight, and the
broker's Redis, which runs with ``noeviction``, would stop every job when a
cache growing inside it filled it. ``check`` refuses the deployment's own
Redis server and a Redis that does not evict.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import redis

from dropq.workers import keys
from dropq.workers.cache import CacheError, Stored

__all__ = ["RedisCacheStore"]

_SCAN_COUNT = 1000


class RedisCacheStore:
    """Entries as ``{prefix}:cache:{digest}`` strings with a TTL.

    Args:
        client: the cache's Redis (``decode_responses=True``).
        state: the deployment's own Redis, which the cache must not be.
    """

    kind = "redis"

    def __init__(self, client: redis.Redis, state: redis.Redis) -> None:
        self._redis = client
        self._state = state

    def get_many(self, digests: Sequence[bytes]) -> dict[bytes, Stored]:
        """The entries found among these keys."""
        try:
            values = self._redis.mget([keys.cache_entry_key(d.hex()) for d in digests])
        except redis.RedisError as exc:
            raise CacheError(f"cache Redis: {type(exc).__name__}: {exc}") from exc
        found: dict[bytes, Stored] = {}
        for digest, value in zip(digests, values, strict=True):  # type: ignore[arg-type]
            if value:
                try:
                    raw = json.loads(str(value))
                    found[digest] = Stored(str(raw["s"]), int(raw["t"]), str(raw["a"]))
                except (ValueError, KeyError, TypeError):
                    continue  # an entry this version cannot read: a miss, asked again and replaced
        return found

    def put_many(self, entries: Mapping[bytes, Stored], *, max_age_ms: Mapping[str, int]) -> None:
        """Write these entries, each expiring when it is too old to answer."""
        pipe = self._redis.pipeline(transaction=False)
        for digest, entry in entries.items():
            value = json.dumps({"s": entry.status, "t": entry.fetched_ms, "a": entry.answer}, separators=(",", ":"))
            pipe.set(keys.cache_entry_key(digest.hex()), value, px=max(1, max_age_ms.get(entry.status, 1)))
        try:
            pipe.execute()
        except redis.RedisError as exc:
            raise CacheError(f"cache Redis: {type(exc).__name__}: {exc}") from exc

    def delete_many(self, digests: Sequence[bytes]) -> int:
        """Delete these keys; how many were there."""
        try:
            return int(self._redis.delete(*(keys.cache_entry_key(d.hex()) for d in digests)))  # type: ignore[arg-type]
        except redis.RedisError as exc:
            raise CacheError(f"cache Redis: {type(exc).__name__}: {exc}") from exc

    def clear(self) -> int:
        """Delete every entry of this deployment's prefix."""
        deleted = 0
        try:
            batch: list[str] = []
            for key in self._redis.scan_iter(match=keys.cache_entry_key("*"), count=_SCAN_COUNT):
                batch.append(str(key))
                if len(batch) >= _SCAN_COUNT:
                    deleted += int(self._redis.unlink(*batch))  # type: ignore[arg-type]
                    batch = []
            if batch:
                deleted += int(self._redis.unlink(*batch))  # type: ignore[arg-type]
        except redis.RedisError as exc:
            raise CacheError(f"cache Redis: {type(exc).__name__}: {exc}") from exc
        return deleted

    def purge(self, *, found_before_ms: int, not_found_before_ms: int) -> int:
        """Nothing to do: entries expire by themselves."""
        return 0

    def check(self) -> str | None:
        """Why this Redis must not hold the cache: the deployment's own server, or one that does not evict."""
        try:
            ours = self._state.info("server").get("run_id")
            theirs = self._redis.info("server").get("run_id")
        except redis.RedisError as exc:
            return f"the cache Redis cannot be reached ({type(exc).__name__})"
        if ours and ours == theirs:
            return (
                "DROPQ_CACHE_URL names the Redis server of the broker and job state: the cache needs a Redis of its"
                " own with an eviction policy (or PostgreSQL)"
            )
        try:
            policy = self._redis.config_get("maxmemory-policy").get("maxmemory-policy")
        except redis.RedisError:
            return None  # a managed Redis that refuses CONFIG: its documentation says how it evicts
        if policy == "noeviction":
            return (
                "the cache Redis runs with maxmemory-policy noeviction: give it maxmemory and an eviction policy"
                " (allkeys-lru), so that a full cache drops old entries instead of refusing writes"
            )
        return None

    def size(self) -> tuple[int, int]:
        """Entries, and the Redis's ``used_memory`` (a Redis for the cache alone)."""
        count = sum(1 for _ in self._redis.scan_iter(match=keys.cache_entry_key("*"), count=_SCAN_COUNT))
        return count, int(self._redis.info("memory")["used_memory"])
