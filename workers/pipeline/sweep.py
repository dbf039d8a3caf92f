"""The sweep: send again the steps whose message was lost, re-derived from the state; finish what is complete.

Every message dropq sends itself arms a deadline first (``jobs.watchdog``):
when it is due, plus ``DROPQ_STALL_TIMEOUT_S``. A worker that dies holding
messages (a countdown is held from the moment it is sent) leaves their
deadlines to pass; the broker would give the messages back only after its
visibility timeout. The sweep takes the overdue members and re-derives each
step from the state it finds: a batch ``pending``/``posting`` -> submit,
``submitted`` -> poll, ``fetched`` -> sink; a delivery not yet counted ->
deliver; a job complete, or finishing with a silent finisher -> finish; a
parked part -> its check. Work found done is dropped from the watch. A resent
step that turns out alive after all is a no-op: the batch's ``seq``, its
claim lease and the deliveries' done set stop it.

Each running job also gets its finish check (a crash between its last
delivery and the finish message leaves nothing armed) and its TTLs renewed.
"""

from __future__ import annotations

import structlog

from dropq.workers import keys
from dropq.workers.cache import CacheError
from dropq.workers.jobs.batch import BatchState, is_shared
from dropq.workers.jobs.watchdog import Watched, parse_member
from dropq.workers.pipeline import followup
from dropq.workers.pipeline.finish import finish_if_complete
from dropq.workers.pipeline.followup import Followup
from dropq.workers.pipeline.shared import rescue_carried
from dropq.workers.runtime import Runtime

__all__ = ["sweep", "rederive", "SWEEP_LIMIT"]

_log = structlog.get_logger(__name__)

# The result cache's old entries are deleted this often (by the one worker that takes the lock).
CACHE_PURGE_EVERY_S = 3600
# Overdue members handled per sweep; the rest wait for the next one (a sweep stays short).
SWEEP_LIMIT = 2000


def rederive(rt: Runtime, watched: Watched) -> list[Followup]:
    """The message that carries the watched work on from the state it is in; nothing when it is done."""
    if not is_shared(watched.batch_id) and not rt.redis.exists(keys.job_key(watched.job_id)):
        # Its job is gone (expired, evicted, deleted): nothing to carry on, and nothing to keep alive.
        # (A shared request has no job of its own: its batches' jobs are checked by their own steps.)
        return []
    if watched.kind == "b":
        batch = rt.batches.get(watched.batch_id)
        if batch is None:
            return []
        if batch.state is BatchState.CARRIED:
            # Its shared request carries it on (and is watched); one that is gone or closed leaves it alone.
            return rescue_carried(rt, batch)
        if batch.state in (BatchState.PENDING, BatchState.POSTING):
            return [followup.submit(batch.batch_id, batch.seq)]
        if batch.state is BatchState.SUBMITTED:
            return [followup.poll(batch.batch_id, batch.seq)]
        if batch.state is BatchState.FETCHED:
            return [followup.sink(batch.batch_id)]
        # Closed: its deliveries are watched on their own.
        return []
    if watched.kind == "d":
        if rt.outcomes.is_delivered(watched.job_id, watched.unit_id, watched.destination):
            return []
        if rt.outcomes.load(watched.unit_id) is None:
            return []
        return [followup.deliver(watched.job_id, watched.unit_id, watched.destination)]
    if watched.kind == "f":
        return finish_if_complete(rt, watched.job_id)
    if watched.kind == "p" and rt.redis.hexists(keys.job_parked_parts_key(watched.job_id), str(watched.offset)):
        # A check (not a wake-up): it produces the part if its turn came, else looks again later.
        return [followup.produce(watched.job_id, watched.offset, checked_through=-1)]
    return []


def sweep(rt: Runtime) -> list[Followup]:
    """Re-derive every overdue step; check every running job for completion and renew its TTLs."""
    now_ms = rt.now_ms()
    followups: list[Followup] = []
    for member in rt.watchdog.due(now_ms, SWEEP_LIMIT):
        watched = parse_member(member)
        found = rederive(rt, watched) if watched is not None else []
        if found and watched is not None:
            _log.warning("step_resumed", kind=watched.kind, job_id=watched.job_id, task=found[0].task)
            followups.extend(found)
        else:
            rt.watchdog.drop_if_due(member, now_ms)
    for job_id in rt.ledger.running_jobs():
        rt.ledger.renew(job_id)
        followups.extend(finish_if_complete(rt, job_id))
    _purge_cache(rt, now_ms)
    return followups


def _purge_cache(rt: Runtime, now_ms: int) -> None:
    """Once an hour across the fleet: delete the result cache's entries too old to answer."""
    if rt.cache is None or not rt.redis.set(keys.cache_purge_lock_key(), "1", nx=True, ex=CACHE_PURGE_EVERY_S):
        return
    try:
        purged = rt.cache.purge(now_ms)
    except CacheError as exc:
        _log.warning("cache_unavailable", reason=str(exc))
        return
    if purged:
        _log.info("cache_purged", entries=purged)
