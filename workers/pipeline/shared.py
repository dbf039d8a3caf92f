"""The pipeline's side of shared requests (``jobs.sharing``): pool a batch, seal, hand results on.

A submit of a batch that is not full pools it instead of POSTing it
(``share_or_send``). The join that finds the pool holding a full batch's
records, or its oldest batch waiting the linger time, seals a shared request
and sends its submit; the first batch of an empty pool sends a check of the
pool for when its linger is over. A lone batch at the seal is sent alone,
so a lone contact costs the linger and nothing else. The shared request's
results are handed to each batch it carries (``hand_on_results``), which
then sinks in its own job.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from dropq.dropcontact.joining import correlation_id_of
from dropq.dropcontact.records import MAX_BATCH_RECORDS
from dropq.workers.jobs.batch import OPEN_STATES, Batch, BatchState, TransitionRefused
from dropq.workers.jobs.sharing import pool_of
from dropq.workers.pipeline import followup
from dropq.workers.pipeline.followup import Followup
from dropq.workers.runtime import Runtime

__all__ = [
    "Pooled",
    "share_or_send",
    "hand_on_results",
    "send_alone",
    "rescue_carried",
    "is_poolable",
    "options_of",
    "shares_requests",
]

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Pooled:
    """What pooling a batch gave: messages to send, and whether the batch is to be POSTed alone now."""

    followups: list[Followup] = field(default_factory=list)
    send_now: bool = False


def shares_requests(rt: Runtime, records: int) -> bool:
    """Whether a new batch of this many records waits to share a request: sharing is on and it is not full."""
    return rt.settings.coalesce_linger_s > 0 and records < MAX_BATCH_RECORDS


def is_poolable(rt: Runtime, batch: Batch) -> bool:
    """Whether this batch waits to share a request: not full, pending, never in doubt, not sent alone."""
    return (
        shares_requests(rt, batch.count)
        and batch.state is BatchState.PENDING
        and not (batch.is_shared or batch.solo or batch.in_doubt or batch.carrier)
    )


def options_of(rt: Runtime, batch: Batch) -> tuple[bool, str | None]:
    """The ``siren`` and ``language`` a batch's POST is sent with."""
    if batch.is_shared:
        return batch.siren, batch.language
    options = rt.ledger.options(batch.job_id)
    return options.siren, options.language


def share_or_send(rt: Runtime, batch: Batch) -> Pooled:
    """Pool the batch; seal what is due; say whether the batch itself goes alone now."""
    siren, language = options_of(rt, batch)
    pool = pool_of(siren, language)
    now_ms = rt.now_ms()
    view = rt.shared.join(batch, pool, now_ms)
    if view.code < 0:
        # Gone, stale, or already taken on (shared, or sent alone by a seal): another message carries it.
        return Pooled()
    linger_ms = int(rt.settings.coalesce_linger_s * 1000)
    followups: list[Followup] = []
    send_now = False
    sealed_any = False
    while view.members and (view.records >= MAX_BATCH_RECORDS or now_ms - view.oldest_ms >= linger_ms):
        sealed = rt.shared.seal(pool, siren=siren, language=language, now_ms=now_ms)
        if sealed.shared_id:
            _log.info("request_shared", batch_id=sealed.shared_id)
            followups.append(followup.submit(sealed.shared_id, 0))
        elif sealed.alone_id == batch.batch_id:
            send_now = True
        elif sealed.alone_id:
            followups.append(followup.submit(sealed.alone_id, sealed.alone_seq))
        else:
            break
        sealed_any = True
        view = rt.shared.view(pool)
    if view.members and (sealed_any or view.oldest_id == batch.batch_id):
        # The pool's next check, when its oldest batch has waited the linger (its own submit, at its seq).
        oldest = batch if view.oldest_id == batch.batch_id else rt.batches.get(view.oldest_id)
        if oldest is not None:
            wait_s = max(0.0, (view.oldest_ms + linger_ms - now_ms) / 1000)
            followups.append(followup.submit(oldest.batch_id, oldest.seq, wait_s))
    return Pooled(followups, send_now)


def send_alone(rt: Runtime, shared: Batch, seq: int) -> list[Followup]:
    """The API refused the shared request (400): each batch it carries is sent alone, and bisects itself."""
    seqs = rt.shared.unshare(shared.batch_id, shared.members, rt.now_ms(), refused_seq=seq)
    _log.warning("shared_request_refused", batch_id=shared.batch_id, batches=len(shared.members))
    return [followup.submit(m, s) for m, s in zip(shared.members, seqs, strict=False) if s >= 0]


def rescue_carried(rt: Runtime, batch: Batch) -> list[Followup]:
    """A carried batch found overdue: nothing while its shared request is open, else it goes alone."""
    seqs = rt.shared.unshare(batch.carrier, [batch.batch_id], rt.now_ms(), refused_seq=None)
    if not seqs or seqs[0] < 0:
        return []
    _log.warning("carried_batch_orphaned", job_id=batch.job_id, batch_id=batch.batch_id, shared=batch.carrier)
    return [followup.submit(batch.batch_id, seqs[0])]


def hand_on_results(rt: Runtime, shared: Batch) -> list[Followup]:
    """Give each batch the shared request carries its own results, and send its sink; then close the request.

    Results are matched to batches by correlation id (``{index}.{job secret}``: unique across jobs), so an
    API that answers out of order still gives each record its own result; one it leaves out fails in its
    batch's sink like any missing result.
    """
    if shared.state is not BatchState.FETCHED:
        return []
    results = rt.batches.results(shared.batch_id) or []
    owner: dict[str, str] = {}
    for member, records in zip(shared.members, rt.batches.records_of(shared.members), strict=True):
        for record in records:
            owner[str(correlation_id_of(record))] = member
    slices: dict[str, list[dict[str, object]]] = {member: [] for member in shared.members}
    for result in results:
        owned_by = owner.get(str(correlation_id_of(result)))
        if owned_by is not None:
            slices[owned_by].append(result)
    now_ms = rt.now_ms()
    followups: list[Followup] = []
    for member in shared.members:
        rt.batches.fetch(
            member,
            slices[member],  # type: ignore[arg-type]
            partial=shared.partial,
            now_ms=now_ms,
            via=shared.fetched_via,
            carrier=shared,
        )
    for member, state in zip(shared.members, rt.batches.states_of(shared.members), strict=True):
        # Fetched now, or by an earlier run of this step that died before the close: its sink is due.
        if state is not None and state[0] is BatchState.FETCHED:
            followups.append(followup.sink(member, inline=True))
    try:
        rt.batches.transition(shared.batch_id, (BatchState.FETCHED,), to=BatchState.DONE, bump=True)
    except TransitionRefused:
        return followups
    rt.batches.forget(shared.batch_id)
    return followups


def close_failed(rt: Runtime, shared: Batch, reason: str) -> None:
    """Close a shared request whose batches were each failed with ``reason``."""
    try:
        rt.batches.transition(shared.batch_id, OPEN_STATES, to=BatchState.FAILED, bump=True, reason=reason[:200])
    except TransitionRefused:
        return
    rt.batches.forget(shared.batch_id)
