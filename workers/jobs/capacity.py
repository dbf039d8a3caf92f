"""Flow control: Redis holds a bounded window of work, not the whole input.

Every contact a running job has received and not yet settled (delivered,
rejected, duplicate or failed) sits in Redis: its batch, its result, its
outcome. ``Capacity`` counts them for the deployment (``JobLedger.waiting_contacts``)
and says whether a new part may come in: while the count is under
``DROPQ_MAX_WAITING_CONTACTS``, or when nothing waits at all (a part larger than
the cap still goes, alone). Otherwise it says how long the limiter needs to
drain the excess, and ``dropq.enrich`` holds the part (or refuses it, when the
caller asked) without storing any of it.

The count is read at most once a second per process and raised by what this
process admits in between, so a burst of calls on one worker cannot all slip
under the cap at once; workers on other machines see each other within the
second, so the cap can be passed by about one second of calls (documented).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from dropq.dropcontact.records import MAX_BATCH_RECORDS
from dropq.errors import WorkerError
from dropq.workers.jobs.ledger import JobLedger

__all__ = ["Capacity", "DeploymentBusyError", "REFRESH_S", "MIN_WAIT_S", "MAX_WAIT_S"]

# How long one reading of the count is used.
REFRESH_S = 1.0
# The wait said to a held or refused part, in seconds: at least a reading's age, at most a minute.
MIN_WAIT_S = 1.0
MAX_WAIT_S = 60.0
# Requests per batch at least (its POST and one GET): the drain rate is the limiter's over this.
_REQUESTS_PER_BATCH = 2


class DeploymentBusyError(WorkerError):
    """A part refused because the deployment holds its cap of contacts; nothing of it was stored.

    Retryable: send the same call again after the wait the message gives. The one argument is the
    whole message, so that a caller without dropq's code (Celery rebuilds the error from its arguments)
    still reads it.
    """

    @classmethod
    def of(cls, waiting: int, cap: int, retry_after_s: float) -> DeploymentBusyError:
        """The error for ``waiting`` contacts held against ``cap``, drained in ``retry_after_s`` seconds."""
        return cls(
            f"dropq holds {waiting:,} contacts not settled yet (DROPQ_MAX_WAITING_CONTACTS is {cap:,}): "
            f"nothing of this part was stored; send the same call again in {math.ceil(retry_after_s)} s"
        )


class Capacity:
    """Whether this deployment may take more contacts now.

    Args:
        ledger: the job ledgers (the count is read through it).
        cap: the most contacts held before new parts wait.
        drain_per_s: contacts a second the limiter settles at most (rate x margin / requests per batch x 250).
        clock: a monotonic clock in seconds.
    """

    def __init__(
        self, ledger: JobLedger, cap: int, drain_per_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ledger = ledger
        self.cap = cap
        self._drain_per_s = drain_per_s
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at = -math.inf
        self._waiting = 0

    @classmethod
    def for_rate(cls, ledger: JobLedger, cap: int, requests_per_s: float) -> Capacity:
        """A capacity drained at the limiter's rate (requests a second, margin applied)."""
        return cls(ledger, cap, requests_per_s / _REQUESTS_PER_BATCH * MAX_BATCH_RECORDS)

    def admit(self, incoming: int) -> float | None:
        """Count ``incoming`` contacts in and return None, or return the seconds to wait before trying again."""
        with self._lock:
            now = self._clock()
            if now - self._read_at >= REFRESH_S:
                self._waiting = self._ledger.waiting_contacts()
                self._read_at = now
            if self._waiting and self._waiting + incoming > self.cap:
                excess = self._waiting + incoming - self.cap
                return min(MAX_WAIT_S, max(MIN_WAIT_S, excess / self._drain_per_s))
            self._waiting += incoming
            return None

    def busy_error(self, retry_after_s: float) -> DeploymentBusyError:
        """The error that tells a caller of its refused part (the count as last read)."""
        return DeploymentBusyError.of(self._waiting, self.cap, retry_after_s)
