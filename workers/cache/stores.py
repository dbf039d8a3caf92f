"""The result cache a deployment's settings name (``DROPQ_CACHE_URL``), or none."""

from __future__ import annotations

import redis
import structlog

from dropq.config.settings import Settings
from dropq.workers.cache import CacheStore, ResultCache

__all__ = ["open_cache"]

_log = structlog.get_logger(__name__)

# No call to the cache's Redis waits longer than this: a slow cache must not hold a produce.
_SOCKET_TIMEOUT_S = 5.0


def open_cache(settings: Settings, state: redis.Redis, secret: bytes) -> ResultCache | None:
    """The cache of these settings, checked, or None (no URL, or a store that must not be used: logged).

    Args:
        settings: the deployment's settings.
        state: the deployment's own Redis (the cache must not live there).
        secret: the key of the digests (``Runtime.digest_key``).
    """
    if not settings.cache_url:
        return None
    store: CacheStore
    if settings.cache_url.startswith(("postgresql://", "postgres://")):
        from dropq.workers.cache.postgres import PostgresCacheStore

        store = PostgresCacheStore(settings.cache_url)
    else:
        from dropq.workers.cache.redis_store import RedisCacheStore

        client = redis.Redis.from_url(
            settings.cache_url,
            decode_responses=True,
            socket_timeout=_SOCKET_TIMEOUT_S,
            socket_connect_timeout=_SOCKET_TIMEOUT_S,
        )
        store = RedisCacheStore(client, state)
    refusal = store.check()
    if refusal:
        _log.error("cache_disabled", store=store.kind, reason=refusal)
        return None
    return ResultCache(
        store,
        secret,
        max_age_days=settings.cache_max_age_days,
        not_found_max_age_days=settings.cache_not_found_max_age_days,
    )
