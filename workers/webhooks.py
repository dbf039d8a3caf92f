"""Webhook callbacks: an unguessable URL per batch, and what to do with a push.

Dropcontact signs nothing, so the URL itself is the credential: each batch
gets a random token (``secrets.token_urlsafe``), stored in Redis against the
batch. A push is accepted only for a token we issued, for a batch we still
wait for, only when it holds exactly that batch's records (correlation ids
carry a per-job secret) and, once the batch has its ``request_id``, only for
that request. Everything else is refused and changes nothing. Polling stays on as the safety net
for lost pushes, so a push is an optimisation, never a single point of failure.

A push can beat the POST's answer (the API may finish a small batch before
our worker has written the ``request_id``); it is then kept, and the submit
stage hands it on once the batch is ``submitted``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from dropq.dropcontact import json_codec
from dropq.dropcontact.joining import correlation_id_of
from dropq.workers import keys
from dropq.workers.jobs.batch import Batch, BatchState, TransitionRefused
from dropq.workers.pipeline import followup
from dropq.workers.pipeline.followup import Followup
from dropq.workers.pipeline.results import accept_results
from dropq.workers.runtime import Runtime

__all__ = [
    "CALLBACK_PATH",
    "Push",
    "PushVerdict",
    "callback_url_for",
    "parse_push",
    "receive_push",
    "take_early_push",
    "adopt_pushed_results",
    "holds_batch_records",
]

_log = structlog.get_logger(__name__)

CALLBACK_PATH = "/dropq/webhook"
# 32 bytes of randomness: not guessable, not enumerable.
_TOKEN_BYTES = 32
# The only event the API documents; pushes of other events are ignored.
_EVENT_TYPE = "enrich_api_result"


@dataclass(frozen=True, slots=True)
class Push:
    """The results of one request, as a push delivers them."""

    request_id: str | None
    records: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class PushVerdict:
    """What the receiver answers: an HTTP status, what happened, and the messages to send."""

    status: int
    outcome: str
    followups: tuple[Followup, ...] = ()


def callback_url_for(rt: Runtime, batch_id: str) -> str | None:
    """The batch's callback URL (its token made once, kept across re-submits), or None without webhooks."""
    base = rt.settings.webhook_url
    if not base:
        return None
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    if rt.redis.hsetnx(keys.batch_key(batch_id), "callback_token", token):
        rt.redis.set(keys.webhook_token_key(token), batch_id, ex=rt.settings.job_ttl_s)
    else:
        token = str(rt.redis.hget(keys.batch_key(batch_id), "callback_token"))
    return f"{base.rstrip('/')}{CALLBACK_PATH}/{token}"


def _push_of(payload: Any) -> Push | None:
    if not isinstance(payload, Mapping) or not isinstance(payload.get("data"), list):
        return None
    records = [r for r in payload["data"] if isinstance(r, Mapping)]
    request_id = payload.get("request_id")
    return Push(str(request_id) if request_id is not None else None, [dict(r) for r in records])


def parse_push(body: Any) -> list[Push]:
    """Read a push body in any documented shape (pure).

    The old docs' event array (``[{"event_type": "enrich_api_result", "data":
    {"data": [...], "request_id": ...}}]``), one such event alone, or a bare
    results body (``{"data": [...], "request_id": ...}``) all work.

    Returns:
        The pushes found; events of other types and malformed items are left out.
    """
    items = body if isinstance(body, list) else [body]
    pushes: list[Push] = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if "event_type" in item or isinstance(item.get("data"), Mapping):
            if item.get("event_type", _EVENT_TYPE) != _EVENT_TYPE:
                continue
            push = _push_of(item.get("data"))
        else:
            push = _push_of(item)
        if push is not None:
            pushes.append(push)
    return pushes


def receive_push(rt: Runtime, token: str, body: Any) -> PushVerdict:
    """Handle one push for the batch behind ``token``.

    A push is applied only when it holds exactly the batch's records (the same
    correlation ids, which carry a per-job secret, so no other job's or batch's
    push can pass) and, once the batch has its ``request_id``, that request id.
    Anything else is refused and logged; the batch is then completed by polling.

    Returns:
        404 for a token we did not issue; 409 for a push that is not this batch's;
        202 when the push beat the POST's answer (kept for the submit stage);
        200 otherwise (accepted now, or already had).
    """
    batch_id = rt.redis.get(keys.webhook_token_key(token))
    batch = rt.batches.get(str(batch_id)) if batch_id else None
    if batch is None:
        return PushVerdict(404, "unknown_token")
    pushes = parse_push(body)
    if not pushes:
        return PushVerdict(400, "unreadable_body")
    push = next((p for p in pushes if holds_batch_records(rt, batch, p)), None)
    if push is None:
        _log.warning("webhook_refused", job_id=batch.job_id, batch_id=batch.batch_id, reason="records_not_this_batch")
        return PushVerdict(409, "records_not_this_batch")
    if batch.state in (BatchState.PENDING, BatchState.POSTING):
        rt.redis.set(keys.webhook_early_key(batch.batch_id), json.dumps(body), ex=rt.settings.job_ttl_s)
        # The submit may have looked for an early push just before it was kept: look again.
        moved_on = rt.batches.get(batch.batch_id)
        if moved_on is not None and moved_on.state is BatchState.SUBMITTED:
            return PushVerdict(200, "accepted", tuple(take_early_push(rt, batch.batch_id)))
        if moved_on is not None and moved_on.in_doubt and moved_on.state is BatchState.PENDING:
            # A POST whose answer was lost reached the API after all: its submit takes these results now.
            return PushVerdict(202, "kept_for_doubtful_post", (followup.submit(moved_on.batch_id, moved_on.seq),))
        return PushVerdict(202, "kept_until_submitted")
    if batch.state is not BatchState.SUBMITTED:
        return PushVerdict(200, "already_had")
    if push.request_id != batch.request_id:
        _log.warning("webhook_refused", job_id=batch.job_id, batch_id=batch.batch_id, reason="not_this_request")
        return PushVerdict(409, "not_this_request")
    followups = accept_results(rt, batch, push.records, partial=False)
    _log.info("webhook_accepted", job_id=batch.job_id, batch_id=batch.batch_id, records=len(push.records))
    return PushVerdict(200, "accepted", tuple(followups))


def holds_batch_records(rt: Runtime, batch: Batch, push: Push) -> bool:
    """Whether the push holds exactly the batch's records: one each, by correlation id."""
    sent = sorted(str(correlation_id_of(record)) for record in rt.batches.records(batch.batch_id))
    return bool(sent) and sorted(str(correlation_id_of(record)) for record in push.records) == sent


def adopt_pushed_results(rt: Runtime, batch: Batch) -> list[Followup] | None:
    """A batch whose POST is in doubt, with a push kept for it: take its results instead of POSTing again.

    The push came to the batch's own secret URL, so the POST reached the API and was charged once.

    Returns:
        The sink of the results, or None when no push was kept (the caller POSTs again).
    """
    # Read, not taken: it is deleted once its results are kept (a crash in between finds it again).
    raw = rt.redis.get(keys.webhook_early_key(batch.batch_id))
    pushes = parse_push(json_codec.loads(raw)) if raw else []
    # With no request_id of ours to compare, only a push holding exactly this batch's records is taken.
    push = next((p for p in pushes if holds_batch_records(rt, batch, p)), None)
    if push is None:
        if pushes:
            _log.warning("doubtful_post_push_refused", job_id=batch.job_id, batch_id=batch.batch_id)
        return None
    try:
        rt.batches.transition(
            batch.batch_id,
            (BatchState.PENDING, BatchState.POSTING),
            seq=batch.seq,
            to=BatchState.SUBMITTED,
            bump=True,
            request_id=push.request_id or "",
            submitted_ms=rt.now_ms(),
            in_doubt=0,
        )
    except TransitionRefused:
        return []
    for job_id in batch.job_ids:
        rt.ledger.add(job_id, batches_submitted=1)
    _log.info("doubtful_post_answered_by_push", job_id=batch.job_id, batch_id=batch.batch_id)
    moved_on = rt.batches.get(batch.batch_id)
    followups = accept_results(rt, moved_on, push.records, partial=False) if moved_on is not None else []
    rt.redis.delete(keys.webhook_early_key(batch.batch_id))
    return followups


def take_early_push(rt: Runtime, batch_id: str) -> list[Followup]:
    """After the submit: hand on a push that arrived before the ``request_id`` was written."""
    raw = rt.redis.getdel(keys.webhook_early_key(batch_id))
    batch = rt.batches.get(batch_id)
    if not raw or batch is None:
        return []
    for push in parse_push(json_codec.loads(raw)):
        if push.request_id in (None, batch.request_id) and holds_batch_records(rt, batch, push):
            return accept_results(rt, batch, push.records, partial=False)
    return []
