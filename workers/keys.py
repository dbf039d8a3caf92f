"""Every Redis key dropq writes, built here and nowhere else, and the one lifecycle rule they follow.

Layout: ``{prefix}:{kind}:{id}``, the prefix being the deployment's
(``DROPQ_KEY_PREFIX``, default ``dropq``, set once per process by ``use_prefix``):
two deployments on one Redis (staging and production, two teams) never see each
other's jobs, index, watchdog or sweep lock. The account's own state (limiter,
cooldown, adaptive rate, credit balance and pause) is the API's, shared by every
deployment that uses the key, so it stays under ``dropq:`` whatever the prefix:
two deployments with one API key still share its 60 requests a second. Keys about
the account carry a short hash of the API key (``account_id``), never the key itself. Ids never hold contact
data: job ids are the caller's (a safe alphabet without ``/`` or ``|``),
batch ids are ``{job}/{part}/{start}`` (``start``: the segment's first input
index; ``.0``/``.1`` added per split), shared requests (several jobs' batches
in one POST, ``jobs.sharing``) are ``~shared/{random}``, unit ids are a batch id or
``{job}/{part}/{start}/others``, so no two jobs' ids
can meet.

Lifecycle of a job's state
--------------------------

*What a job owns*: its ledger (``job``), its parts (``job-parts``, also its
tombstone), produced ranges (``job-produced``), parked parts
(``job-parked``), per-part progress (``job-progress``), committed segments
(``job-segments``), identity digests (``job-seen``, the set of its buckets
``job-seen-b``), batch ids
(``job-batches``), done deliveries (``job-deliveries``); per batch its hash
(``batch``), records (``batch-records``) and results (``batch-results``);
per unit of outcomes its hash (``unit``); its webhook tokens and early pushes;
each destination's own idempotency keys (``delivered``, ``job-outcomes``).

*Who renews TTLs* (``DROPQ_JOB_TTL_S``): every write renews the keys it
writes, and a write that renews a batch renews its records and results too
(``transition``, ``claim``, ``fetch``, and ``arm`` for every message sent
about the batch, waits included). The sweep renews a running job's own keys
when their TTL falls below half, so a job paused for days (credits, the daily
budget) keeps everything. No script creates a key it only meant to update:
a key that is gone stays gone (scripts check the ledger exists first).

*What is left after a job finishes*: the ledger and the parts set keep the
full TTL from the finish (the tombstone), so a resend of a part after any
delay is recognised and changes nothing, and a new part is refused with
``JobFinishedError`` (its outputs are written; new contacts need a new
``job_id``). The bookkeeping sets go after ``FINISHED_BULK_TTL_S``; batch
hashes after the job TTL. When the ledger expires, the job id is free again.

*Global keys without a TTL*: the running-jobs index (``jobs``) and the
watchdog (``watchdog``); members leave them when their job or work is done.
The pools of batches waiting to share a request (``pool``, ``pool-sizes``, one
per siren/language) are renewed by each join and emptied by each seal; a shared
request's hash and records live like a batch's, and go when it closes.
The metrics' counters (``stats``, ``api-calls``) only grow in value, over a
bounded set of fields (``workers.metrics.fields``); the worker heartbeats
(``workers``) drop members silent for a day. Claims on questions in flight
(``inflight``) belong to no job's set: each has a TTL of a batch's longest
life and goes when its batch closes.
"""

from __future__ import annotations

import hashlib

from dropq.config.settings import DEFAULT_KEY_PREFIX

__all__ = [
    "ACCOUNT_PREFIX",
    "use_prefix",
    "prefix",
    "account_id",
    "limiter_key",
    "cooldown_key",
    "limiter_line_key",
    "adaptive_rate_key",
    "credits_key",
    "credits_pause_key",
    "credits_recheck_key",
    "budget_key",
    "processing_times_key",
    "job_key",
    "job_parts_key",
    "job_segments_key",
    "job_progress_key",
    "watchdog_key",
    "job_deliveries_key",
    "unit_key",
    "job_seen_key",
    "job_seen_bucket_key",
    "job_batches_key",
    "job_outcomes_key",
    "batch_key",
    "batch_records_key",
    "batch_results_key",
    "pool_key",
    "pool_sizes_key",
    "job_produced_parts_key",
    "job_parked_parts_key",
    "delivery_key",
    "webhook_token_key",
    "webhook_early_key",
    "jobs_index_key",
    "sweep_lock_key",
    "cache_entry_key",
    "cache_purge_lock_key",
    "inflight_key",
    "stats_key",
    "api_calls_key",
    "workers_key",
]

# The account's limits are the API's, whatever deployment spends them.
ACCOUNT_PREFIX = DEFAULT_KEY_PREFIX
_prefix = DEFAULT_KEY_PREFIX


def use_prefix(prefix: str) -> None:
    """Put every deployment key of this process under ``prefix`` (``Settings.key_prefix``).

    One process serves one deployment: the app and the CLI call this once, with their settings.
    """
    global _prefix
    _prefix = prefix


def prefix() -> str:
    """The deployment prefix this process uses."""
    return _prefix


def account_id(api_key: str | None) -> str:
    """A short, stable, non-reversible name for an API key (12 hex digits of SHA-256)."""
    return hashlib.sha256((api_key or "").encode()).hexdigest()[:12]


def _key(kind: str, *parts: str) -> str:
    return ":".join((_prefix, kind, *parts))


def _account_key(kind: str, account: str) -> str:
    return ":".join((ACCOUNT_PREFIX, kind, account))


# Account-wide state: shared by every worker of every deployment that uses this API key.
def limiter_key(account: str) -> str:
    """The rate limiter's state for an account."""
    return _account_key("limiter", account)


def limiter_line_key(account: str, lane: str) -> str:
    """A lane's line at the account's limiter: the requests promised a slot (a sorted set)."""
    return _account_key(f"limiter-{lane}", account)


def cooldown_key(account: str) -> str:
    """Set while the account cools down after a 429."""
    return _account_key("cooldown", account)


def adaptive_rate_key(account: str) -> str:
    """The current adaptive rate of an account (lowered on 429s, recovering slowly)."""
    return _account_key("rate", account)


def credits_key(account: str) -> str:
    """The last known credit balance of an account."""
    return _account_key("credits", account)


def credits_pause_key(account: str) -> str:
    """Set while submits are paused for missing credits."""
    return _account_key("credits-pause", account)


def credits_recheck_key(account: str) -> str:
    """Held (SET NX PX) by the one worker allowed to re-check a paused account's balance now."""
    return _account_key("credits-recheck", account)


def processing_times_key(account: str, size_class: str) -> str:
    """The API's latest processing times (ms) for batches of one size class, newest first: the API's, shared."""
    return _account_key("processing", f"{account}:{size_class}")


def budget_key(account: str, day: str) -> str:
    """Credits spent on a UTC day (``YYYY-MM-DD``) against the optional daily budget.

    The budget is a deployment's own setting (``DROPQ_CREDIT_BUDGET_PER_DAY``), so its spending is too.
    """
    return _key("budget", account, day)


# Job state: one job = one ledger, its batches and its outcomes.
def job_key(job_id: str) -> str:
    """The job ledger (a hash of counters, state and timestamps)."""
    return _key("job", job_id)


def job_parts_key(job_id: str) -> str:
    """The input parts of a job already received (a set), so a resent part counts once."""
    return _key("job-parts", job_id)


def job_produced_parts_key(job_id: str) -> str:
    """The input ranges of a job whose produce has finished (a sorted set of ``start:end`` by start)."""
    return _key("job-produced", job_id)


def job_parked_parts_key(job_id: str) -> str:
    """Input parts of a job waiting for the parts before them (a hash offset -> part id and contacts, JSON)."""
    return _key("job-parked", job_id)


def job_segments_key(job_id: str) -> str:
    """Produced segments of a job already committed (a set), so a redelivered produce counts once."""
    return _key("job-segments", job_id)


def job_progress_key(job_id: str) -> str:
    """How far each part of a job being produced was committed (a hash part id -> next input index)."""
    return _key("job-progress", job_id)


def watchdog_key() -> str:
    """Deadlines of the work in flight (a sorted set of members by deadline, Redis time in ms)."""
    return _key("watchdog")


def job_deliveries_key(job_id: str) -> str:
    """Deliveries of a job already done, as ``{unit}|{destination}`` members (a set)."""
    return _key("job-deliveries", job_id)


def unit_key(unit_id: str) -> str:
    """Outcomes waiting for delivery to a job's destinations (a hash: payload, remaining)."""
    return _key("unit", unit_id)


def job_seen_key(job_id: str) -> str:
    """The buckets of identity digests a job touched (a set of bucket numbers), for de-duplication."""
    return _key("job-seen", job_id)


def job_seen_bucket_key(job_id: str, bucket: int) -> str:
    """One bucket of a job's identity digests (a small hash: digest rest -> first index)."""
    return _key("job-seen-b", job_id, f"{bucket:04x}")


def job_batches_key(job_id: str) -> str:
    """The batch ids of a job (a set)."""
    return _key("job-batches", job_id)


def job_outcomes_key(job_id: str) -> str:
    """The stream of per-record outcomes of a job (enriched, not found, rejected, duplicate, failed)."""
    return _key("job-outcomes", job_id)


def jobs_index_key() -> str:
    """Running jobs by last activity (a sorted set), for cleanup and listing."""
    return _key("jobs")


def batch_key(batch_id: str) -> str:
    """A batch's state machine (a hash: state, request_id, attempts, timestamps)."""
    return _key("batch", batch_id)


def batch_records_key(batch_id: str) -> str:
    """The records of a batch as sent to the API (a JSON string)."""
    return _key("batch-records", batch_id)


def batch_results_key(batch_id: str) -> str:
    """The results the API returned for a batch (a JSON string), until the sink has joined them."""
    return _key("batch-results", batch_id)


def pool_key(options: str) -> str:
    """Batches not full waiting to share a request with these options (a sorted set: batch id -> joined ms)."""
    return _key("pool", options)


def pool_sizes_key(options: str) -> str:
    """The records of each batch in that pool (a hash: batch id -> count)."""
    return _key("pool-sizes", options)


def delivery_key(job_id: str, destination: str) -> str:
    """Record ids already written by one destination of a job (idempotent delivery)."""
    return _key("delivered", job_id, destination)


def webhook_token_key(token: str) -> str:
    """The batch a webhook callback token belongs to."""
    return _key("webhook", token)


def webhook_early_key(batch_id: str) -> str:
    """A push that arrived before the batch's ``request_id`` was written."""
    return _key("webhook-early", batch_id)


def sweep_lock_key() -> str:
    """Held by the one worker sweeping for stalled batches (expires by itself)."""
    return _key("sweep-lock")


# The result cache (in a Redis of its own, DROPQ_CACHE_URL): entries by keyed digest, never an identity.
def cache_entry_key(digest_hex: str) -> str:
    """One cached answer (a pattern with ``*``)."""
    return _key("cache", digest_hex)


def cache_purge_lock_key() -> str:
    """Held by the one worker purging old cache entries this hour (expires by itself)."""
    return _key("cache-purge-lock")


def inflight_key(digest_hex: str) -> str:
    """The job whose batch asks the API this question now (``jobs.inflight``), by keyed digest."""
    return _key("inflight", digest_hex)


# Metrics: what `dropq metrics` reads (workers.metrics).
def stats_key() -> str:
    """The deployment's counters since it started (a hash, fields named in ``workers.metrics.fields``)."""
    return _key("stats")


def api_calls_key(account: str) -> str:
    """Requests this deployment's workers sent to the API (a hash ``{method}|{outcome}`` -> count)."""
    return _key("api-calls", account)


def workers_key() -> str:
    """The deployment's live workers (a sorted set: worker name -> last heartbeat, Redis time in ms)."""
    return _key("workers")
