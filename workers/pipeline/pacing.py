"""When to look at a submitted batch next: early while the request budget has room, on the schedule otherwise.

GETs cost no credit, only requests. While the account's limiter has unused budget (no cooldown,
less than a request promised ahead: ``RateLimiter.has_room``), a batch is looked at around the
API's processing times learnt from earlier batches of its size (``early_delay_s``), so a lone
contact comes back about when the API has it. When the budget is tight, the fixed schedule
(``DROPQ_POLL_*``) decides alone, so that at saturation the GETs per batch are those of the fixed
schedule. ``DROPQ_POLL_EARLY=false`` keeps the fixed schedule always.
"""

from __future__ import annotations

from dropq.dropcontact.backoff import early_delay_s
from dropq.workers.pipeline import followup
from dropq.workers.pipeline.followup import Followup
from dropq.workers.runtime import Runtime

__all__ = ["next_poll", "back_to_schedule", "EARLY_JITTER"]

# Early looks are spread by this share either way, so that batches sent together are not looked at together.
EARLY_JITTER = 0.1


def next_poll(
    rt: Runtime, batch_id: str, seq: int, count: int, polls: int, age_s: float, *, interactive: bool = False
) -> Followup:
    """The next look at a batch of ``count`` records, ``age_s`` old, looked at ``polls`` times.

    An early look is marked so: when it comes due, it is made only if the budget still has room
    (a slot just taken by another request is waited for); otherwise the batch goes back to the
    schedule (``back_to_schedule``). The limiter is asked only when an early look would come first.
    An interactive job's batch is looked at early whatever the budget: its looks take the limiter's
    first lane (a few GETs, no credit), so a lone contact beside a backfill still comes back fast.
    """
    scheduled = rt.poll_schedule.next_delay_s(polls, age_s, rt.rng)
    if rt.settings.poll_early:
        early = early_delay_s(age_s, rt.processing.observed_s(count))
        if early is not None:
            early *= rt.rng.uniform(1 - EARLY_JITTER, 1 + EARLY_JITTER)
            if early < scheduled and (interactive or rt.limiter.has_room()):
                return followup.poll(batch_id, seq, early, early=True)
    return followup.poll(batch_id, seq, scheduled)


def back_to_schedule(rt: Runtime, batch_id: str, seq: int, polls: int, since_last_look_s: float) -> Followup:
    """An early look that found no room: the look the schedule had planned, counted from the last one."""
    scheduled = rt.poll_schedule.delay_s(polls, rt.rng)
    return followup.poll(batch_id, seq, max(0.0, scheduled - since_last_look_s))
