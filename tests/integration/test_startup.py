"""The worker's start-up checks against a real Redis."""

from __future__ import annotations

import redis

from dropq.workers.embedded import EmbeddedRedis
from dropq.workers.startup import eviction_warning


def test_an_evicting_redis_is_named_and_noeviction_is_quiet() -> None:
    """allkeys-lru gets a warning naming the policy; noeviction none."""
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        try:
            assert eviction_warning(client) is None
            client.config_set("maxmemory-policy", "allkeys-lru")
            warning = eviction_warning(client)
            assert warning is not None and "allkeys-lru" in warning and "noeviction" in warning
        finally:
            client.close()
