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
from dropq.workers.runtime import Runtime

__all__ = ["next_poll_delay_s"]


def next_poll_delay_s(rt: Runtime, count: int, polls: int, age_s: float) -> float:
    """The delay to the next look at a batch of ``count`` records, ``age_s`` old, looked at ``polls`` times."""
    scheduled = rt.poll_schedule.next_delay_s(polls, age_s, rt.rng)
    if not rt.settings.poll_early or not rt.limiter.has_room():
        return scheduled
    early = early_delay_s(age_s, rt.processing.observed_s(count))
    return scheduled if early is None else min(scheduled, early)
