"""What a task does with a limiter's ``Decision``: go, wait a moment inline, or re-enqueue itself.

Pure: values in, values out. A wait of a fraction of a second is cheaper
inline than through the broker; anything longer must not hold a worker slot,
so the task re-enqueues itself with a countdown.

Re-enqueueing is waiting, not failing: it must not use up the retries that real
errors (5xx, timeouts) are allowed. The recommended way is
``self.retry(countdown=plan.countdown_s, max_retries=None)`` and a separate
``waits`` counter carried in the task's kwargs (capped as a safety net), so
``self.request.retries`` keeps counting real failures only; ``retry`` keeps the
task id and the ``acks_late`` redelivery guarantees. (``apply_async`` of a
fresh message works too, but then the task must ack the old message itself
after the new one is durably queued.)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from workers.limiter.gcra import Decision

__all__ = ["WaitAction", "WaitPlan", "plan_wait", "DEFAULT_INLINE_WAIT_MS"]

# Waits up to this long are slept inline: shorter than a broker round trip and a countdown's imprecision.
DEFAULT_INLINE_WAIT_MS = 250


class WaitAction(Enum):
    """What a task should do with a decision."""

    GO = "go"
    SLEEP = "sleep"
    REQUEUE = "requeue"


@dataclass(frozen=True, slots=True)
class WaitPlan:
    """The plan for one decision.

    Args:
        action: go now, sleep ``sleep_s`` and ask again, or re-enqueue with ``countdown_s``.
        sleep_s: for ``SLEEP``, seconds to sleep; else 0.
        countdown_s: for ``REQUEUE``, whole seconds (rounded up, at least 1); else 0.
    """

    action: WaitAction
    sleep_s: float
    countdown_s: int


def plan_wait(decision: Decision, inline_max_ms: int = DEFAULT_INLINE_WAIT_MS) -> WaitPlan:
    """Say whether to go, sleep inline (``retry_after_ms <= inline_max_ms``) or re-enqueue.

    Args:
        decision: the limiter's (or the credit guard's) answer.
        inline_max_ms: the longest wait slept inline.

    Returns:
        The plan.
    """
    if decision.allowed:
        return WaitPlan(WaitAction.GO, 0.0, 0)
    if decision.retry_after_ms <= inline_max_ms:
        return WaitPlan(WaitAction.SLEEP, decision.retry_after_ms / 1000, 0)
    return WaitPlan(WaitAction.REQUEUE, 0.0, max(1, -(-decision.retry_after_ms // 1000)))
