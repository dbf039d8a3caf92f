"""Questions in flight: the same contact in two running jobs is sent once (the first to produce it asks).

A question is a contact's identity with the options that change the answer, named by its keyed digest
(``ResultCache.key``). A part about to send questions claims them (``inflight_claim.lua``, all or none);
a part that finds one claimed by another job is held and looks again shortly, and by then the answer is
in the result cache; a closed batch frees its claims (``inflight_release.lua``) after its answers are
written. A claim expires by itself, so a lost batch holds nobody for long.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from dropq.workers import keys
from dropq.workers.jobs.scripts import load_script

__all__ = ["InFlight"]


class InFlight:
    """Claims and frees questions.

    Args:
        client: the deployment's Redis.
        ttl_ms: how long a claim holds without its batch closing.
    """

    def __init__(self, client: redis.Redis, ttl_ms: int) -> None:
        self._ttl_ms = ttl_ms
        self._claim = load_script(client, "inflight_claim")
        self._release = load_script(client, "inflight_release")

    def claim(self, job_id: str, digests: Sequence[bytes], *, wait: bool) -> int:
        """Claim the free questions for the job; with ``wait``, none when another job holds one.

        Returns:
            0 when the part may go on, else how long (ms) the other jobs' claims may still hold.
        """
        if not digests:
            return 0
        claim_keys = [keys.inflight_key(d.hex()) for d in dict.fromkeys(digests)]
        return int(self._claim(keys=claim_keys, args=[job_id, self._ttl_ms, "1" if wait else "0"]))

    def release(self, job_id: str, digests: Sequence[bytes]) -> int:
        """Free the job's own claims of these questions; how many."""
        if not digests:
            return 0
        return int(self._release(keys=[keys.inflight_key(d.hex()) for d in dict.fromkeys(digests)], args=[job_id]))
