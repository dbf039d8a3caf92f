"""``DropqCollector``: the Prometheus metrics of a deployment, computed from Redis at every scrape.

Nothing is kept in the exporter's memory: every value is read from what the workers record in
Redis (the job scripts' counters, the ledgers, the batches, the limiter, the credits, the broker),
so one ``dropq metrics`` is right for any pool and any number of workers and machines, and a
restart of it loses nothing. The readers are the stores' own (``CreditGuard.status``,
``RateLimiter.state``, ``JobLedger.read_many``, ``BatchStore.states_of``, ``parse_member``).
Names follow Prometheus's conventions: ``dropq_`` then what, then the unit; counters end in
``_total``. The account is labelled by its short hash, never the key.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from dropq.config.celeryconfig import STAGES, consumed_queues, queue_name
from dropq.config.settings import Settings
from dropq.workers import keys
from dropq.workers.broker import REDIS_SCHEMES
from dropq.workers.jobs.batch import OPEN_STATES
from dropq.workers.jobs.batches import BatchStore
from dropq.workers.jobs.ledger import JobLedger
from dropq.workers.jobs.watchdog import Watchdog, parse_member
from dropq.workers.limiter.credits import CreditGuard
from dropq.workers.limiter.limiter import RateLimiter
from dropq.workers.limiter.redis_store import RedisStore
from dropq.workers.metrics import fields
from dropq.workers.metrics.broker_depth import read_broker_depth
from dropq.workers.metrics.recorder import ALIVE_WITHIN_S
from dropq.workers.runtime import SANDBOX_DEFAULT_KEY

__all__ = ["DropqCollector"]

_MS = 1000.0


class DropqCollector(Collector):
    """Collects every ``dropq_*`` metric of one deployment (``Settings.key_prefix``) and its account.

    Args:
        client: the state Redis (``decode_responses=True``).
        settings: the deployment's settings (the account, the budget, the queues).
        broker: the broker's Redis when it is one (else no broker metrics); defaults to ``client``.
        clock_s: wall-clock seconds (ages of the credit balance and of broker ETAs).
    """

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        *,
        broker: redis.Redis | None = None,
        clock_s: Callable[[], float] = time.time,
    ) -> None:
        self._redis = client
        self._settings = settings
        self._broker = broker if broker is not None else client
        self._has_redis_broker = settings.effective_broker_url.startswith(REDIS_SCHEMES)
        self._clock_s = clock_s
        self.account = keys.account_id(settings.api_key or SANDBOX_DEFAULT_KEY)
        self._credits = CreditGuard(
            client, self.account, budget_per_day=settings.credit_budget_per_day, recheck_s=settings.credit_recheck_s
        )
        self._limiter = RateLimiter(RedisStore(client), self.account, settings.rate_limit)
        self._ledger = JobLedger(client, settings.job_ttl_s)
        self._batches = BatchStore(client, settings.job_ttl_s, Watchdog(client, 0, settings.job_ttl_s))

    def collect(self) -> Iterator[Metric]:
        """Every metric, read now; only ``dropq_up`` (0) when Redis does not answer."""
        started = time.monotonic()
        up = GaugeMetricFamily("dropq_up", "1 when dropq metrics could read Redis at this scrape, else 0")
        try:
            families = [*self._account_metrics(), *self._work_metrics(), *self._broker_metrics()]
        except (redis.RedisError, OSError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        info = GaugeMetricFamily("dropq_info", "The deployment and account this exporter reads (always 1)",
                                 labels=["deployment", "account"])  # fmt: skip
        info.add_metric([self._settings.key_prefix, self.account], 1)
        yield info
        yield from families
        duration = GaugeMetricFamily("dropq_scrape_duration_seconds", "How long this scrape took to read Redis")
        duration.add_metric([], time.monotonic() - started)
        yield duration

    # -- the account: credits, budget, requests, limiter -----------------------------------------------------

    def _account_metrics(self) -> list[Metric]:
        account = [self.account]
        credits = self._credits.status()
        left = GaugeMetricFamily("dropq_credits_left", "The account's credit balance in the API's last answer",
                                 labels=["account"])  # fmt: skip
        age = GaugeMetricFamily("dropq_credits_balance_age_seconds", "How old dropq_credits_left is",
                                labels=["account"])  # fmt: skip
        if credits["balance"] is not None:
            left.add_metric(account, credits["balance"])
            age.add_metric(account, max(0.0, self._clock_s() - credits["balance_at_ms"] / _MS))
        paused = GaugeMetricFamily("dropq_credits_paused", "1 while submits wait for credits (a 403), else 0",
                                   labels=["account"])  # fmt: skip
        paused.add_metric(account, 1 if credits["paused"] else 0)
        spent = GaugeMetricFamily(
            "dropq_credits_spent_today",
            "Credits reserved today (UTC) against DROPQ_CREDIT_BUDGET_PER_DAY (counted only with a budget)",
            labels=["account"],
        )
        spent.add_metric(account, credits["budget_spent_today"])
        families: list[Metric] = [left, age, paused, spent]
        if credits["budget_per_day"] is not None:
            budget = GaugeMetricFamily("dropq_credits_budget_per_day", "DROPQ_CREDIT_BUDGET_PER_DAY",
                                       labels=["account"])  # fmt: skip
            budget.add_metric(account, credits["budget_per_day"])
            families.append(budget)

        calls = fields.int_fields(self._redis.hgetall(keys.api_calls_key(self.account)))  # type: ignore[arg-type]
        requests = CounterMetricFamily(
            "dropq_api_requests", "Requests the workers sent to the API, by method and outcome",
            labels=["account", "kind", "outcome"],
        )  # fmt: skip
        for kind in fields.REQUEST_KINDS:
            for outcome in fields.REQUEST_OUTCOMES:
                requests.add_metric([self.account, kind, outcome], calls.get(f"{kind}|{outcome}", 0))
        families.append(requests)

        state = self._limiter.state()
        factor = state.factor_ppm / 1_000_000
        for name, doc, value in (
            ("dropq_limiter_rate_per_second", "The limiter's current rate: DROPQ_RATE_LIMIT x the adaptive factor",
             self._settings.rate_limit * factor),
            ("dropq_limiter_rate_factor", "The adaptive factor (1 = full rate; lowered on 429s, recovers by itself)",
             factor),
            ("dropq_limiter_cooldown_seconds", "Cooldown left after a 429 (no request of the account goes meanwhile)",
             state.cooldown_ms / _MS),
            ("dropq_limiter_strikes", "Consecutive 429 episodes", state.strikes),
            ("dropq_limiter_backlog_seconds", "Grants already promised beyond now", state.backlog_ms / _MS),
        ):  # fmt: skip
            gauge = GaugeMetricFamily(name, doc, labels=["account"])
            gauge.add_metric(account, value)
            families.append(gauge)
        return families

    # -- the deployment's work: jobs, batches, records, deliveries, workers ----------------------------------

    def _work_metrics(self) -> list[Metric]:
        seconds, micros = self._redis.time()
        now_ms = seconds * 1000 + micros // 1000
        stats = fields.int_fields(self._redis.hgetall(keys.stats_key()))  # type: ignore[arg-type]
        families: list[Metric] = []

        job_ids = [str(m) for m in self._redis.zrange(keys.jobs_index_key(), 0, -1)]
        jobs_by_state: Counter[str] = Counter({"running": 0, "finishing": 0})
        waiting, created_by_job = 0, {}
        for status in self._ledger.read_many(job_ids):
            if status is None or status.state not in jobs_by_state:
                continue
            jobs_by_state[status.state] += 1
            waiting += max(0, status.received - status.accounted)
            created_by_job[status.job_id] = status.created_ms
        jobs = GaugeMetricFamily("dropq_jobs", "Jobs not finished, by state", labels=["state"])
        for state, count in jobs_by_state.items():
            jobs.add_metric([state], count)
        finished = CounterMetricFamily("dropq_jobs_finished", "Jobs finished (their completion announced)")
        finished.add_metric([], stats.get(fields.JOBS_FINISHED, 0))
        records_waiting = GaugeMetricFamily(
            "dropq_records_waiting", "Records received by unfinished jobs and without a final outcome yet"
        )
        records_waiting.add_metric([], waiting)
        families += [jobs, finished, records_waiting]

        received = CounterMetricFamily("dropq_records_received", "Records received by jobs (each counted once)")
        received.add_metric([], stats.get(fields.RECEIVED, 0))
        records = CounterMetricFamily("dropq_records", "Records with a final outcome, by status", labels=["status"])
        for status_name in fields.RECORD_STATUSES:
            records.add_metric([status_name], stats.get(fields.record_field(status_name), 0))
        cached = CounterMetricFamily(
            "dropq_records_cached",
            "Records answered from the result cache (no request, no credit; among dropq_records)",
        )
        cached.add_metric([], stats.get(fields.CACHED, 0))
        families += [received, records, cached]

        # Open batches and pending deliveries are exactly the watchdog's members.
        watched = [parse_member(str(m)) for m in self._redis.zrange(keys.watchdog_key(), 0, -1)]
        batch_ids = [w.batch_id for w in watched if w is not None and w.kind == "b"]
        pending: Counter[str] = Counter()
        for w in watched:
            if w is not None and w.kind == "d":
                pending[w.destination] += 1
        by_state: Counter[str] = Counter({str(state): 0 for state in OPEN_STATES})
        oldest_ms = now_ms
        for found in self._batches.states_of(batch_ids):
            if found is None or found[0] not in OPEN_STATES:
                continue
            state, job_id, created_ms = found
            by_state[str(state)] += 1
            created_ms = created_ms or created_by_job.get(job_id, 0)
            if created_ms:
                oldest_ms = min(oldest_ms, created_ms)
        batches = GaugeMetricFamily("dropq_batches", "Batches not closed yet, by state", labels=["state"])
        for state, count in by_state.items():
            batches.add_metric([state], count)
        oldest = GaugeMetricFamily(
            "dropq_batch_oldest_waiting_age_seconds", "Age of the oldest batch not closed yet (0 when none)"
        )
        oldest.add_metric([], max(0.0, (now_ms - oldest_ms) / _MS))
        created = CounterMetricFamily("dropq_batches_created", "Batches created (by produce, or by a split)")
        created.add_metric([], stats.get(fields.batch_field("created"), 0))
        closed = CounterMetricFamily("dropq_batches_closed", "Batches closed, by final state", labels=["state"])
        for event in fields.BATCH_EVENTS[1:]:
            closed.add_metric([event], stats.get(fields.batch_field(event), 0))
        families += [batches, oldest, created, closed]

        gets_buckets, gets_sum = fields.histogram(stats, "gets")
        gets = HistogramMetricFamily(
            "dropq_batch_get_requests", "GETs that answered for a batch delivered with results (0 with a push)",
            buckets=gets_buckets, sum_value=gets_sum,
        )  # fmt: skip
        delay_buckets, delay_sum = fields.histogram(stats, "ready_delay")
        delay = HistogramMetricFamily(
            "dropq_batch_ready_to_delivered_seconds",
            "From a batch's results ready at the API to their delivery here, where known (a push, or a poll "
            "that saw the batch unready first)",
            buckets=delay_buckets, sum_value=delay_sum,
        )  # fmt: skip
        families += [gets, delay]

        deliveries = CounterMetricFamily(
            "dropq_deliveries", "Deliveries of a unit of outcomes to a destination, done or given up",
            labels=["destination", "outcome"],
        )  # fmt: skip
        for name, count in sorted(stats.items()):
            if name.startswith("deliveries|"):
                destination, _, outcome = name[len("deliveries|") :].rpartition("|")
                deliveries.add_metric([destination, outcome], count)
        pending_family = GaugeMetricFamily(
            "dropq_deliveries_pending", "Deliveries not done yet, by destination", labels=["destination"]
        )
        for destination, count in sorted(pending.items()):
            pending_family.add_metric([destination], count)
        families += [deliveries, pending_family]

        alive = GaugeMetricFamily(
            "dropq_workers_alive", f"Workers whose heartbeat is younger than {ALIVE_WITHIN_S:g} s"
        )
        alive.add_metric([], self._redis.zcount(keys.workers_key(), now_ms - int(ALIVE_WITHIN_S * _MS), "+inf"))
        families.append(alive)
        return families

    # -- the broker ----------------------------------------------------------------------------------------

    def _broker_metrics(self) -> list[Metric]:
        if not self._has_redis_broker:
            return []
        queues = consumed_queues(self._settings)
        stage_of = {queue_name(self._settings, stage): stage for stage in STAGES}
        depth = read_broker_depth(self._broker, queues, self._clock_s())
        family = GaugeMetricFamily(
            "dropq_broker_messages",
            "Messages in the broker: ready (in the queue), scheduled (held by a worker until a countdown/ETA), "
            "unacked (held by a worker, running or prefetched)",
            labels=["queue", "stage", "state"],
        )
        for (queue, state), count in sorted(depth.messages.items()):
            family.add_metric([queue, stage_of.get(queue, "default"), state], count)
        return [family]
