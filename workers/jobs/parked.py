"""Input parts parked in Redis while the parts before them are produced (see ``pipeline.part_order``).

A part that arrives before its turn is stored here once, rather than sent
round the broker again and again with its contacts; the producer of the part
ahead of it wakes it with a message that carries only its offset. A part in
its turn that waits for answers another job is getting is held here too. The
job's ledger counts the contacts parked (``parked``), so that flow control
sees them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from dropq.dropcontact import json_codec
from dropq.workers import keys
from dropq.workers.jobs.scripts import load_script

__all__ = ["ParkedPart", "ParkedParts"]


@dataclass(frozen=True, slots=True)
class ParkedPart:
    """A part waiting for its turn."""

    part_id: str
    contacts: list[Any]


class ParkedParts:
    """Parks parts of a job and finds the one whose turn has come.

    Args:
        client: a Redis client (``decode_responses=True``).
        ttl_s: the TTL of the job's parked parts.
    """

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self._redis = client
        self._ttl_s = ttl_s
        self._script = load_script(client, "parked_parts")

    def _keys(self, job_id: str) -> list[str]:
        return [keys.job_produced_parts_key(job_id), keys.job_parked_parts_key(job_id), keys.job_key(job_id)]

    def park(self, job_id: str, offset: int, part: ParkedPart) -> bool:
        """Park the part at ``offset`` unless its turn has come; False when it has (nothing is stored)."""
        return bool(self._script(keys=self._keys(job_id), args=["park", offset, _payload(part), self._ttl_s]))

    def hold(self, job_id: str, offset: int, part: ParkedPart) -> None:
        """Park the part at ``offset`` though its turn has come (it waits for answers another job is getting)."""
        self._script(keys=self._keys(job_id), args=["hold", offset, _payload(part), self._ttl_s])

    def load(self, job_id: str, offset: int) -> ParkedPart | None:
        """The part parked at ``offset``, or None when it is not (or no longer) parked."""
        raw = self._redis.hget(keys.job_parked_parts_key(job_id), str(offset))
        if not raw:
            return None
        stored = json_codec.loads(raw)
        return ParkedPart(str(stored["part_id"]), list(stored["contacts"]))

    def is_parked(self, job_id: str, offset: int) -> bool:
        """Whether a part is parked (or held) at ``offset``."""
        return bool(self._redis.hexists(keys.job_parked_parts_key(job_id), str(offset)))

    def produced(self, job_id: str, offset: int) -> int | None:
        """Unpark the part produced at ``offset`` (if it was parked); the offset of the parked part whose turn came."""
        turn = int(self._script(keys=self._keys(job_id), args=["produced", offset]))
        return turn if turn >= 0 else None


def _payload(part: ParkedPart) -> str:
    # "n" first: parked_parts.lua reads the count from the head of the JSON, without decoding the contacts.
    body = {"n": len(part.contacts), "part_id": part.part_id, "contacts": part.contacts}
    return json_codec.dumps(body)
