"""The API's processing times, learnt from the batches of every worker: where early polls aim.

Each batch whose results came in adds one estimate (``backoff.processing_estimate_s``) to a short
list per account and size class in Redis (the newest ``KEPT`` of them, the API's and so shared by
every deployment on the key). A worker reads the list at most every ``CACHE_S`` seconds.
"""

from __future__ import annotations

import threading
import time

import redis

from dropq.dropcontact.backoff import size_class
from dropq.workers import keys

__all__ = ["ProcessingTimes", "KEPT", "CACHE_S"]

# Estimates kept per size class: enough for stable quantiles, few enough to follow a change in a minute.
KEPT = 200
# How long a worker uses the list it read before reading it again.
CACHE_S = 10.0
# The list goes when no batch of the class came back for this long (the API may have changed since).
TTL_S = 24 * 3600


class ProcessingTimes:
    """Record and read the API's processing times for one account."""

    def __init__(self, client: redis.Redis, account: str) -> None:
        self._redis = client
        self._account = account
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, list[float]]] = {}

    def record(self, count: int, seconds: float) -> None:
        """Add what a batch of ``count`` records just showed (``seconds`` from submit to results)."""
        key = keys.processing_times_key(self._account, size_class(count))
        pipe = self._redis.pipeline(transaction=False)
        pipe.lpush(key, int(seconds * 1000))
        pipe.ltrim(key, 0, KEPT - 1)
        pipe.expire(key, TTL_S)
        pipe.execute()

    def observed_s(self, count: int) -> list[float]:
        """The latest processing times (seconds) of batches of ``count``'s size class."""
        name = size_class(count)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None and now - cached[0] < CACHE_S:
            return cached[1]
        raw = self._redis.lrange(keys.processing_times_key(self._account, name), 0, KEPT - 1)
        values = [int(v) / 1000 for v in raw]  # type: ignore[union-attr]
        with self._lock:
            self._cache[name] = (now, values)
        return values
