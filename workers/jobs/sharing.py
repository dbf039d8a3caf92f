"""Shared requests: the batches of several jobs that are not full, sent in one POST.

Requests are what the API rations (60 a second, whatever their size), so a
CRM that sends one or two contacts a call must not cost a request a call.
A batch that is not full joins the pool of its request options (``siren``
and ``language``: what one request shares). The pool is sealed into a shared
request when it holds a full batch's records, or when its oldest batch has
waited ``DROPQ_COALESCE_LINGER_S``. The shared request is a batch of the
state machine (``jobs.batch``) with no job of its own: its records are its
batches' end to end, its claim, POST, polls, pushes and retries are a
batch's. Its results go to each batch it carries, which then closes in its
own job as if it had been sent alone: the job's counts, outcomes in input
order, destinations, callbacks and ``resubmitted`` do not change.

Every step is one script: joining (``pool_join.lua``), sealing
(``share.lua``), handing the batches back to be sent alone when the API
refuses the shared request or it vanished (``unshare.lua``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from dropq.dropcontact.records import MAX_BATCH_RECORDS
from dropq.workers import keys
from dropq.workers.jobs.batch import SHARED_PREFIX, Batch
from dropq.workers.jobs.scripts import load_script
from dropq.workers.jobs.watchdog import Watchdog, batch_member

__all__ = ["PoolView", "Sealed", "SharedRequests", "pool_of"]


def pool_of(siren: bool, language: str | None) -> str:
    """The pool of batches whose records can share a request with these options."""
    return f"{'s1' if siren else 's0'}.{language or '-'}"


@dataclass(frozen=True, slots=True)
class PoolView:
    """A pool just after a join: ``code`` 1 joined now, 2 in already; below 0 it could not join.

    ``code`` -1: the batch is gone; -2: it is no longer pending (shared, sent alone); -3: a stale seq.
    """

    code: int
    records: int = 0
    members: int = 0
    oldest_id: str = ""
    oldest_ms: int = 0


@dataclass(frozen=True, slots=True)
class Sealed:
    """What a seal made: a shared request (``shared_id``), one batch left to go alone (``alone_id``), or nothing."""

    shared_id: str = ""
    alone_id: str = ""
    alone_seq: int = 0


class SharedRequests:
    """Pools batches and seals shared requests out of them.

    Args:
        client: a Redis client (``decode_responses=True``).
        ttl_s: the TTL of the keys written.
        watchdog: where the shared requests' deadlines are kept.
    """

    def __init__(self, client: redis.Redis, ttl_s: int, watchdog: Watchdog) -> None:
        self._redis = client
        self._ttl_s = ttl_s
        self._watchdog = watchdog
        self._join = load_script(client, "pool_join")
        self._share = load_script(client, "share")
        self._unshare = load_script(client, "unshare")

    def join(self, batch: Batch, pool: str, now_ms: int) -> PoolView:
        """Put the batch in the pool (once) and say how the pool stands."""
        script_keys = [keys.batch_key(batch.batch_id), keys.pool_key(pool), keys.pool_sizes_key(pool)]
        code, *rest = self._join(keys=script_keys, args=[batch.batch_id, batch.seq, now_ms, self._ttl_s])
        if int(code) < 0:
            return PoolView(int(code))
        records, members, oldest_id, oldest_ms = rest
        return PoolView(int(code), int(records), int(members), str(oldest_id), int(oldest_ms))

    def view(self, pool: str) -> PoolView:
        """How the pool stands now (``code`` 2)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hvals(keys.pool_sizes_key(pool))
        pipe.zrange(keys.pool_key(pool), 0, 0, withscores=True)
        sizes, oldest = pipe.execute()
        first = oldest[0] if oldest else ("", 0)
        return PoolView(2, sum(int(n) for n in sizes), len(sizes), str(first[0]), int(first[1]))

    def seal(self, pool: str, *, siren: bool, language: str | None, now_ms: int) -> Sealed:
        """Seal one shared request out of the pool's oldest batches that fit one request."""
        ids: list[str] = [str(m) for m in self._redis.zrange(keys.pool_key(pool), 0, -1)]
        sizes = self._redis.hmget(keys.pool_sizes_key(pool), ids) if ids else []
        chosen: list[str] = []
        total = 0
        for batch_id, size in zip(ids, sizes, strict=True):
            count = int(size or 0)
            if total + count <= MAX_BATCH_RECORDS:
                chosen.append(batch_id)
                total += count
        if not chosen:
            return Sealed()
        shared_id = f"{SHARED_PREFIX}{secrets.token_hex(8)}"
        script_keys = [
            keys.pool_key(pool),
            keys.pool_sizes_key(pool),
            keys.batch_key(shared_id),
            keys.batch_records_key(shared_id),
            keys.watchdog_key(),
        ]
        args: list[str | int] = [
            shared_id,
            now_ms,
            self._ttl_s,
            self._watchdog.deadline(now_ms),
            batch_member(shared_id),
            "1" if siren else "0",
            language or "",
            MAX_BATCH_RECORDS,
        ]
        for batch_id in chosen:
            script_keys += [keys.batch_key(batch_id), keys.batch_records_key(batch_id)]
            args += [batch_id, batch_member(batch_id)]
        answer = self._share(keys=script_keys, args=args)
        if int(answer[0]) == 2:
            return Sealed(shared_id=str(answer[1]))
        if int(answer[0]) == 1:
            return Sealed(alone_id=str(answer[1]), alone_seq=int(answer[2]))
        return Sealed()

    def unshare(self, shared_id: str, members: Sequence[str], now_ms: int, *, refused_seq: int | None) -> list[int]:
        """Give the shared request's batches back to be sent alone; their new seqs (-1: not carried by it).

        ``refused_seq``: the API refused the request (400), which must be posting at that seq and closes as
        ``split``. ``None``: the batches outlived it (it must be gone or closed). Nothing is done (``[]``) when
        the shared request is not in the state the case needs.
        """
        script_keys = [keys.batch_key(shared_id), keys.watchdog_key()]
        script_keys += [keys.batch_key(batch_id) for batch_id in members]
        args: list[str | int] = [
            "refused" if refused_seq is not None else "orphan",
            shared_id,
            "" if refused_seq is None else refused_seq,
            self._ttl_s,
            self._watchdog.deadline(now_ms),
            batch_member(shared_id),
            *(batch_member(batch_id) for batch_id in members),
        ]
        return [int(seq) for seq in self._unshare(keys=script_keys, args=args)]
