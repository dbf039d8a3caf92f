"""What a worker checks and says once it is ready: its settings (no secret) and Redis's eviction policy.

An evicting Redis loses broker messages and job state under memory pressure;
dropq needs ``maxmemory-policy noeviction``. The check only warns: managed
Redis services sometimes refuse ``CONFIG GET``.
"""

from __future__ import annotations

from typing import Any

import redis
import structlog
from celery import signals

from dropq.config.settings import MISSING_API_KEY_REASON, Settings
from dropq.workers import keys

__all__ = ["install", "eviction_warning"]

_log = structlog.get_logger(__name__)

_SAFE_POLICY = "noeviction"


def eviction_warning(client: redis.Redis) -> str | None:
    """A warning when Redis may evict keys, else None (also None when the policy can't be read)."""
    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
    except redis.RedisError:
        return None
    if policy and policy != _SAFE_POLICY:
        return f"Redis runs with maxmemory-policy {policy}: set it to {_SAFE_POLICY}, or queued work may be lost"
    return None


def install(settings: Settings) -> None:
    """Connect the worker-ready handler."""

    @signals.worker_ready.connect(weak=False)
    def _on_ready(**_: Any) -> None:
        _log.info(
            "worker_ready",
            api_url=settings.api_url,
            account=keys.account_id(settings.api_key or "sandbox"),
            rate_limit=settings.rate_limit,
            webhooks=bool(settings.webhook_url),
            # The store's kind only: the URL may hold a password.
            result_cache=settings.cache_url.split("://", 1)[0] if settings.cache_url else None,
        )
        if settings.is_missing_api_key:
            _log.error("api_key_missing", api_url=settings.api_url, reason=MISSING_API_KEY_REASON)
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
        try:
            warning = eviction_warning(client)
        except redis.RedisError:
            warning = None
        finally:
            client.close()
        if warning:
            _log.warning("redis_may_evict", reason=warning)
