"""The watchdog: a deadline for every piece of work in flight, so recovery follows the state, not the broker.

A message a worker holds dies with it: the broker gives it back only after
its visibility timeout (an hour by default), and a message with a countdown
is held from the moment it is sent. So every message dropq sends itself arms
a deadline here first (when it is due, plus ``DROPQ_STALL_TIMEOUT_S``), and
the scripts that move work on hand the watch over in the same step (a batch
closed arms its deliveries). A deadline that passes means the message is
gone; the sweep re-derives the step from the state and sends it again (see
``pipeline.sweep``). A copy that was not lost after all is a no-op: it finds
its batch's ``seq`` moved on, or its delivery counted.

Members name the work, never contact data: ``b|{batch}`` (the batch's next
step: submit, poll or sink), ``d|{unit}|{destination}`` (a delivery),
``f|{job}`` (a finish) and ``p|{job}|{offset}`` (a parked part's check).
Deadlines are in Redis time (``Runtime.now_ms``), never a worker's clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from dropq.workers import keys
from dropq.workers.jobs.scripts import load_script

__all__ = [
    "Watchdog",
    "Watched",
    "batch_member",
    "delivery_member",
    "finish_member",
    "parked_member",
    "parse_member",
]

_SEP = "|"


def batch_member(batch_id: str) -> str:
    """The member watching a batch's next step."""
    return f"b{_SEP}{batch_id}"


def delivery_member(unit_id: str, destination: str) -> str:
    """The member watching one unit's delivery to one destination."""
    return f"d{_SEP}{unit_id}{_SEP}{destination}"


def finish_member(job_id: str) -> str:
    """The member watching a job's finish."""
    return f"f{_SEP}{job_id}"


def parked_member(job_id: str, offset: int) -> str:
    """The member watching a parked part's check."""
    return f"p{_SEP}{job_id}{_SEP}{offset}"


@dataclass(frozen=True, slots=True)
class Watched:
    """A member, read back: its kind and the ids of its work."""

    kind: str
    batch_id: str = ""
    unit_id: str = ""
    destination: str = ""
    job_id: str = ""
    offset: int = 0


def parse_member(member: str) -> Watched | None:
    """Read a member back; None for one this version does not know."""
    kind, _, rest = member.partition(_SEP)
    if kind == "b" and rest:
        return Watched("b", batch_id=rest, job_id=rest.split("/", 1)[0])
    if kind == "d":
        unit_id, _, destination = rest.partition(_SEP)
        if unit_id and destination:
            return Watched("d", unit_id=unit_id, destination=destination, job_id=unit_id.split("/", 1)[0])
    if kind == "f" and rest:
        return Watched("f", job_id=rest)
    if kind == "p":
        job_id, _, offset = rest.rpartition(_SEP)
        if job_id and offset.isdigit():
            return Watched("p", job_id=job_id, offset=int(offset))
    return None


class Watchdog:
    """Arms, lists and drops deadlines.

    Args:
        client: a Redis client (``decode_responses=True``).
        stall_ms: how long work may be overdue before it counts as lost.
        ttl_s: the TTL renewed on the keys of the work when it is armed.
    """

    def __init__(self, client: redis.Redis, stall_ms: int, ttl_s: int) -> None:
        self._redis = client
        self.stall_ms = stall_ms
        self._ttl_s = ttl_s
        self._arm = load_script(client, "arm")
        self._drop = load_script(client, "drop_if_due")

    def deadline(self, now_ms: int, delay_s: float = 0.0) -> int:
        """The deadline of work due in ``delay_s``."""
        return now_ms + int(max(0.0, delay_s) * 1000) + self.stall_ms

    def arm(self, member: str, now_ms: int, delay_s: float = 0.0, renew: Sequence[str] = ()) -> None:
        """Set the deadline of work due in ``delay_s``, and renew the TTL of the keys it lives in.

        The keys live at least until the deadline has passed, whatever the TTL: the work finds them.
        """
        deadline_ms = self.deadline(now_ms, delay_s)
        ttl_s = max(self._ttl_s, (deadline_ms - now_ms) // 1000 + 1)
        self._arm(keys=[keys.watchdog_key(), *renew], args=[member, deadline_ms, ttl_s])

    def due(self, now_ms: int, limit: int) -> list[str]:
        """Members whose deadline has passed, the most overdue first."""
        return [str(m) for m in self._redis.zrangebyscore(keys.watchdog_key(), "-inf", now_ms, start=0, num=limit)]

    def drop_if_due(self, member: str, now_ms: int) -> None:
        """Drop the member, unless a live worker re-armed it since it was found due."""
        self._drop(keys=[keys.watchdog_key()], args=[member, now_ms])

    def disarm(self, member: str) -> None:
        """Drop the member: its work is done."""
        self._redis.zrem(keys.watchdog_key(), member)

    def deadline_of(self, member: str) -> int | None:
        """The member's deadline, or None when it is not watched."""
        score = self._redis.zscore(keys.watchdog_key(), member)
        return None if score is None else int(score)
