"""The Celery app of the limiter benchmark (``bench/limiter.py`` starts its workers; not a dropq module).

Configured by the environment the benchmark gives each worker:
``BENCH_REDIS_URL`` (broker and limiter), ``BENCH_SANDBOX_URL``, ``BENCH_API_KEY``
(never a task argument), ``BENCH_RATE`` (N) and ``BENCH_CELERY_RATE`` (the
baseline's per-worker ``rate_limit``). Each task makes one
``GET /v1/account/credits``, the free endpoint, so only the rate matters.
"""

from __future__ import annotations

import math
import os
from functools import cache

import redis
import requests
from celery import Celery, Task

from dropq.workers import keys
from dropq.workers.limiter import CreditGuard, RateLimiter, RedisStore

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SANDBOX_URL = os.environ.get("BENCH_SANDBOX_URL", "http://127.0.0.1:8090")
RATE = float(os.environ.get("BENCH_RATE", "20"))
CELERY_RATE = os.environ.get("BENCH_CELERY_RATE", f"{RATE:g}/s")
# Connect and read timeouts of the benchmark's requests.
TIMEOUT_S = (2.0, 5.0)

app = Celery("bench-limiter", broker=REDIS_URL)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    task_default_queue="bench",
    broker_connection_retry_on_startup=True,
)


@cache
def _session() -> requests.Session:
    session = requests.Session()
    session.headers["X-Access-Token"] = os.environ.get("BENCH_API_KEY", "sandbox")
    return session


@cache
def _account() -> str:
    return keys.account_id(os.environ.get("BENCH_API_KEY", "sandbox"))


@cache
def _limiter() -> RateLimiter:
    return RateLimiter(RedisStore(redis.Redis.from_url(REDIS_URL)), _account(), RATE)


@cache
def _credits() -> CreditGuard:
    return CreditGuard(redis.Redis.from_url(REDIS_URL), _account())


def _retry_after_s(response: requests.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


@app.task(name="bench.dropq_get", bind=True, max_retries=None)
def dropq_get(self: Task, waits: int = 0) -> int:
    """One GET through dropq's shared limiter; waiting re-enqueues with a countdown, never a failure retry."""
    decision = _limiter().acquire_waiting()
    if not decision.allowed:
        countdown_s = max(1, math.ceil(decision.retry_after_ms / 1000))
        raise self.retry(countdown=countdown_s, kwargs={"waits": waits + 1}, max_retries=None)
    response = _session().get(f"{SANDBOX_URL}/v1/account/credits", timeout=TIMEOUT_S)
    if response.status_code == 429:
        cooldown_ms = _limiter().report_429(_retry_after_s(response))
        raise self.retry(countdown=max(1, math.ceil(cooldown_ms / 1000)), kwargs={"waits": waits + 1}, max_retries=None)
    if response.ok:
        _credits().record_balance(int(response.json().get("credits", 0)))
    return response.status_code


@app.task(name="bench.celery_get", rate_limit=CELERY_RATE)
def celery_get() -> int:
    """One GET under Celery's own per-worker ``rate_limit`` (the baseline); a 429 is only counted."""
    return _session().get(f"{SANDBOX_URL}/v1/account/credits", timeout=TIMEOUT_S).status_code


__all__ = ["app", "dropq_get", "celery_get"]
