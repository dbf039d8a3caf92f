"""A batch and its states: the state machine every batch script follows (the store: ``jobs.batches``).

States and the transitions between them (each one atomic, see transition.lua):

    pending --claim--> posting --accepted--> submitted --results--> fetched --sink--> done
       ^                  |                      |
       +--- wait/retry ---+                      +--> failed (also from pending/posting)
       |                  |
       |                  +--400 invalid--> split (two new pending halves)
       |
       +--shared--> carried --its shared request's results--> fetched
                        (back to pending, alone, if that request was refused)

A batch that is not full may share one POST with other jobs' batches
(``jobs.sharing``): it waits in a pool, then is ``carried`` by a shared
request, itself a batch of this machine (id ``~shared/...``, no job of its
own) whose records are its batches' end to end. The shared request is
claimed, POSTed and polled like any batch; its results are handed to each
batch it carries, which goes on to its own sink, counts and deliveries.

A batch is POSTed at most once: the claim moves it to ``posting`` with a
lease; the ``request_id`` is written the moment the API answers. A worker
that finds ``posting`` with an expired lease knows the previous attempt died
between the POST and that write (the one unavoidable window) and counts the
re-POST in the job's ``resubmitted``. Leases and deadlines are in Redis time.
The claim is taken before the request's rate slot opens, so that the POST
follows the slot at once; a claim whose slot is then missed is given back
(``posting`` -> ``pending``, with the doubt the claim found).

Every script that writes a batch also keeps its watch (``jobs.watchdog``):
a new batch is watched from its commit, a closed one hands over to its
deliveries, a split one to its halves.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from dropq.errors import WorkerError
from dropq.workers.jobs.outcomes import job_of_unit
from dropq.workers.limiter import gcra

__all__ = [
    "Batch",
    "BatchState",
    "Claim",
    "OPEN_STATES",
    "SHARED_PREFIX",
    "STATE_NAMES",
    "SegmentCommit",
    "TransitionRefused",
    "batch_of",
    "is_shared",
]


class BatchState(StrEnum):
    """Where a batch stands."""

    PENDING = "pending"
    POSTING = "posting"
    SUBMITTED = "submitted"
    FETCHED = "fetched"
    DONE = "done"
    FAILED = "failed"
    SPLIT = "split"
    # Waiting for the shared request that carries it (``jobs.sharing``).
    CARRIED = "carried"


STATE_NAMES = frozenset(BatchState)

# States in which a batch still waits for its outcomes (it can still be failed).
OPEN_STATES = (
    BatchState.PENDING,
    BatchState.POSTING,
    BatchState.SUBMITTED,
    BatchState.FETCHED,
    BatchState.CARRIED,
)
# The ids of shared requests (several jobs' batches in one POST) start so; no job id can.
SHARED_PREFIX = "~shared/"


class TransitionRefused(WorkerError):
    """A compare-and-set on a batch did not apply (state moved on, or the message is stale)."""

    def __init__(self, batch_id: str, code: int) -> None:
        super().__init__(f"batch {batch_id}: transition refused ({_REFUSALS.get(code, code)})")
        self.batch_id = batch_id
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.batch_id, self.code))


_REFUSALS = {-1: "no such batch", -2: "state not allowed", -3: "stale message", -4: "leased to another worker"}


@dataclass(frozen=True, slots=True)
class Batch:
    """A snapshot of a batch's state."""

    batch_id: str
    job_id: str
    state: BatchState
    seq: int
    count: int
    request_id: str = ""
    submitted_ms: int = 0
    lease_until_ms: int = 0
    polls: int = 0
    looked_ms: int = 0
    errors: int = 0
    callback_token: str = ""
    reason: str = ""
    partial: bool = False
    in_doubt: bool = False
    doubt_ms: int = 0
    created_ms: int = 0
    fetched_ms: int = 0
    fetched_via: str = ""
    # The limiter lane of its requests: "first" (an interactive job's) or "bulk".
    lane: str = gcra.BULK_LANE
    # A shared request: the batches it carries, and the options of its POST.
    members: tuple[str, ...] = ()
    siren: bool = False
    language: str | None = None
    # A carried batch: the shared request that carries it.
    carrier: str = ""
    # Sent alone, never pooled (a split half, a batch of a refused shared request).
    solo: bool = False

    @property
    def is_shared(self) -> bool:
        """Whether this is a shared request, carrying other batches."""
        return is_shared(self.batch_id)

    @property
    def job_ids(self) -> tuple[str, ...]:
        """The jobs whose records this batch sends: its own, or each carried batch's (one per batch)."""
        return tuple(job_of_unit(member) for member in self.members) if self.is_shared else (self.job_id,)

    @property
    def last_look_s(self) -> float:
        """The batch's age at its last "not ready" answer; 0 before any."""
        return max(0.0, (self.looked_ms - self.submitted_ms) / 1000) if self.looked_ms and self.submitted_ms else 0.0


class Claim(NamedTuple):
    """A claim that succeeded: the batch's seq, and whether its POST may repeat an earlier one."""

    seq: int
    in_doubt: bool


@dataclass(frozen=True, slots=True)
class SegmentCommit:
    """One produced segment: an optional batch and the rejected/duplicate records met before it.

    ``segment_id`` is ``{part}/{number}``; ``end`` (the input index after the segment) records how far
    its part was committed.
    """

    job_id: str
    segment_id: str
    batch_id: str | None
    records: list[dict[str, Any]]
    received: int
    rejected: int
    duplicates: int
    outcomes: list[dict[str, Any]]
    end: int = 0
    failed: int = 0
    # Records answered from the result cache (among ``outcomes``): delivered without a request.
    enriched: int = 0
    not_found: int = 0
    credits_saved: int = 0
    # The batch's lane at the limiter (its job's priority).
    lane: str = gcra.BULK_LANE

    @property
    def part_id(self) -> str:
        """The part the segment belongs to."""
        return self.segment_id.split("/", 1)[0]


def batch_of(batch_id: str, raw: dict[str, str]) -> Batch | None:
    if not raw or "job_id" not in raw or raw.get("state") not in STATE_NAMES:
        # Gone, or a fragment no script of this version writes: nothing to act on.
        return None
    return Batch(
        batch_id=batch_id,
        job_id=raw["job_id"],
        state=BatchState(raw["state"]),
        seq=int(raw.get("seq", 0)),
        count=int(raw.get("count", 0)),
        request_id=raw.get("request_id", ""),
        submitted_ms=int(raw.get("submitted_ms", 0)),
        lease_until_ms=int(raw.get("lease_until_ms", 0)),
        polls=int(raw.get("polls", 0)),
        looked_ms=int(raw.get("looked_ms", 0)),
        errors=int(raw.get("errors", 0)),
        callback_token=raw.get("callback_token", ""),
        reason=raw.get("reason", ""),
        partial=raw.get("partial") == "1",
        in_doubt=raw.get("in_doubt") == "1",
        doubt_ms=int(raw.get("doubt_ms", 0)),
        created_ms=int(raw.get("created_ms", 0)),
        fetched_ms=int(raw.get("fetched_ms", 0)),
        fetched_via=raw.get("fetched_via", ""),
        lane=raw.get("lane") or gcra.BULK_LANE,
        members=tuple(raw["members"].split(",")) if raw.get("members") else (),
        siren=raw.get("siren") == "1",
        language=raw.get("language") or None,
        carrier=raw.get("carrier", ""),
        solo=raw.get("solo") == "1",
    )


def is_shared(batch_id: str) -> bool:
    """Whether ``batch_id`` names a shared request."""
    return batch_id.startswith(SHARED_PREFIX)
