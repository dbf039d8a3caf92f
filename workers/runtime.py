"""The per-process resources of a worker: Redis, the API client, the limiter, the stores.

Built lazily on first use and again after a fork (``worker_process_init``),
because neither a ``requests.Session`` nor a Redis connection may be shared
across processes. Everything is passed in from here; nothing else in the
project builds a client or a connection pool of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery, signals

from dropq.config.celeryconfig import DEFAULT_WORKER_THREADS, stall_ms
from dropq.config.destinations import load_destinations
from dropq.config.settings import Settings
from dropq.dropcontact.backoff import PollSchedule, RetrySchedule
from dropq.dropcontact.client import DropcontactClient
from dropq.workers import keys
from dropq.workers.cache import ResultCache
from dropq.workers.cache.stores import open_cache
from dropq.workers.destinations.registry import DestinationRegistry
from dropq.workers.jobs.batches import BatchStore
from dropq.workers.jobs.capacity import Capacity
from dropq.workers.jobs.inflight import InFlight
from dropq.workers.jobs.ledger import JobLedger
from dropq.workers.jobs.outcomes import OutcomeStore
from dropq.workers.jobs.processing import ProcessingTimes
from dropq.workers.jobs.sharing import SharedRequests
from dropq.workers.jobs.watchdog import Watchdog
from dropq.workers.limiter.credits import CreditGuard
from dropq.workers.limiter.gcra import LimiterPolicy
from dropq.workers.limiter.limiter import RateLimiter
from dropq.workers.limiter.redis_store import RedisStore
from dropq.workers.metrics.recorder import ApiCallCounter

__all__ = ["Runtime", "RedisClock", "build_runtime", "digest_key_for", "get_runtime", "install"]

# No Redis call of a worker waits longer than this for an answer.
REDIS_SOCKET_TIMEOUT_S = 10.0
# Without a key, dropq talks to a sandbox that accepts this one (its default).
SANDBOX_DEFAULT_KEY = "sandbox"
# How often a worker re-reads Redis's clock; in between it counts on its own monotonic clock.
CLOCK_SYNC_S = 30.0


class RedisClock:
    """Redis's clock (``TIME``), read every ``CLOCK_SYNC_S`` and carried on with the monotonic clock.

    Leases, deadlines and silences are compared across workers on many machines: they are all in
    this one clock, so a worker whose wall clock is wrong (or jumps) still agrees with the others.
    While Redis cannot be reached, the last offset (or the wall clock, at first) stands in.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        # (Redis time, monotonic time) of the last sync, replaced as one value: the pool's threads
        # read it while one of them syncs, and a base from one sync with a mono from another is a jump.
        self._base = (time.time(), time.monotonic())
        self._synced_mono = -CLOCK_SYNC_S

    def __call__(self) -> float:
        """Seconds since the epoch, in Redis's clock."""
        mono = time.monotonic()
        if mono - self._synced_mono >= CLOCK_SYNC_S:
            self._sync(mono)
        base_s, base_mono = self._base
        return base_s + (time.monotonic() - base_mono)

    def _sync(self, mono: float) -> None:
        self._synced_mono = mono
        try:
            seconds, micros = self._redis.time()
        except (redis.RedisError, OSError):
            return
        self._base = (seconds + micros / 1e6, time.monotonic())


@dataclass
class Runtime:
    """Everything a stage needs, built once per process."""

    settings: Settings
    redis: redis.Redis
    client: DropcontactClient
    limiter: RateLimiter
    credits: CreditGuard
    ledger: JobLedger
    capacity: Capacity
    batches: BatchStore
    shared: SharedRequests
    outcomes: OutcomeStore
    watchdog: Watchdog
    processing: ProcessingTimes
    destinations: DestinationRegistry
    poll_schedule: PollSchedule
    retry_schedule: RetrySchedule
    rng: random.Random
    clock_s: Callable[[], float]
    digest_key: bytes
    inflight: InFlight
    cache: ResultCache | None = None

    def now_ms(self) -> int:
        """Milliseconds since the epoch in Redis's clock (timestamps, leases and deadlines)."""
        return int(self.clock_s() * 1000)


def inflight_ttl_ms(settings: Settings) -> int:
    """How long a claim on a question in flight holds: a batch's longest life (``forceResults`` age) and a
    resumption by the sweep; a lost batch frees its questions by then."""
    return int((settings.poll_max_age_s + 2 * settings.stall_timeout_s) * 1000)


def digest_key_for(settings: Settings) -> bytes:
    """The key of the de-duplication digests: ``DROPQ_DIGEST_SECRET``, else one derived from the API key."""
    if settings.digest_secret:
        return settings.digest_secret.encode()
    api_key = (settings.api_key or SANDBOX_DEFAULT_KEY).encode()
    return hmac.new(api_key, b"dropq de-duplication digests", hashlib.sha256).digest()


def build_runtime(settings: Settings, app: Celery) -> Runtime:
    """Build the resources for these settings.

    Args:
        settings: the process settings.
        app: the Celery app (callbacks are sent through it).
    """
    client = redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        health_check_interval=30,
        # A Redis that vanishes without closing the connection must not hold a worker forever.
        socket_timeout=REDIS_SOCKET_TIMEOUT_S,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT_S,
        retry_on_timeout=True,
    )
    account = keys.account_id(settings.api_key or SANDBOX_DEFAULT_KEY)
    api = DropcontactClient(
        settings.api_key or SANDBOX_DEFAULT_KEY,
        base_url=settings.api_url,
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
        # One kept connection per thread of the pool (prefork: one per process, the rest idle).
        pool_maxsize=int(app.conf.worker_concurrency or DEFAULT_WORKER_THREADS),
        # Every request counted for `dropq metrics`, in memory, flushed once a second.
        on_answer=ApiCallCounter(client, account),
    )
    watchdog = Watchdog(client, stall_ms(settings), settings.job_ttl_s)
    clock = RedisClock(client)
    ledger = JobLedger(client, settings.job_ttl_s)
    digest_key = digest_key_for(settings)
    return Runtime(
        settings=settings,
        redis=client,
        client=api,
        limiter=RateLimiter(
            RedisStore(client),
            account,
            settings.rate_limit,
            policy=LimiterPolicy(settings.rate_limit, safety_margin=settings.rate_margin),
        ),
        credits=CreditGuard(
            client,
            account,
            budget_per_day=settings.credit_budget_per_day,
            recheck_s=settings.credit_recheck_s,
            clock_s=clock,
        ),
        ledger=ledger,
        capacity=Capacity.for_rate(ledger, settings.max_waiting_contacts, settings.rate_limit * settings.rate_margin),
        batches=BatchStore(client, settings.job_ttl_s, watchdog),
        shared=SharedRequests(client, settings.job_ttl_s, watchdog),
        outcomes=OutcomeStore(client, settings.job_ttl_s),
        watchdog=watchdog,
        processing=ProcessingTimes(client, account),
        destinations=DestinationRegistry(
            load_destinations(settings.destinations_path), client, app, settings.job_ttl_s
        ),
        poll_schedule=PollSchedule(
            first_s=settings.poll_first_s,
            base_s=settings.poll_base_s,
            factor=settings.poll_factor,
            cap_s=settings.poll_cap_s,
            max_age_s=settings.poll_max_age_s,
        ),
        retry_schedule=RetrySchedule(max_retries=settings.max_retries),
        rng=random.Random(),
        clock_s=clock,
        digest_key=digest_key,
        inflight=InFlight(client, inflight_ttl_ms(settings)),
        cache=open_cache(settings, client, digest_key),
    )


_current: list[Runtime] = []
_factory: list[Callable[[], Runtime]] = []
# The thread pool's first tasks all ask at once: one of them builds, the others wait for it.
_building = threading.Lock()


def get_runtime() -> Runtime:
    """This process's runtime, built on first use (once, whatever the threads asking)."""
    if not _current:
        with _building:
            if not _current:
                _current.append(_factory[0]())
    return _current[0]


def install(settings: Settings, app: Celery) -> None:
    """Register how to build the runtime, and rebuild it in each forked pool process."""
    _factory[:] = [lambda: build_runtime(settings, app)]

    @signals.worker_process_init.connect(weak=False)
    def _after_fork(**_: Any) -> None:
        _current.clear()
