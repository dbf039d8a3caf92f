"""When to look at a submitted batch next: around the API's processing time, else on the schedule.

GETs cost no credit, only requests. A batch is looked at around the API's processing times learnt
from earlier batches of its size (``early_delay_s``), so a lone contact comes back about when the
API has it, and a backfill's batches leave Redis as soon as they are ready. An interactive job's
look takes the limiter's first lane; a bulk job's waits in the bulk line with the POSTs, first come
(``poll_batch``), so when the budget is tight it is made later, when the batch is more likely ready,
and one told to wait past its scheduled look goes back to the schedule (``DROPQ_POLL_*``), which
stays the bound. ``DROPQ_POLL_EARLY=false`` keeps the fixed schedule always.
"""

from __future__ import annotations

from dropq.dropcontact.backoff import early_delay_s
from dropq.workers.pipeline import followup
from dropq.workers.pipeline.followup import Followup
from dropq.workers.runtime import Runtime

__all__ = ["next_poll", "back_to_schedule", "EARLY_JITTER"]

# Early looks are spread by up to this share later than their target, so that batches sent together are not
# looked at together; never earlier: a look before its target (the API's 2 s, say) is a GET that finds nothing
# (bench/lone_job.py: each lone job took 3.1 s or 4.1 s, as its look at 2 s landed after the API's 2.0 s or before).
EARLY_JITTER = 0.1


def next_poll(
    rt: Runtime, batch_id: str, seq: int, count: int, polls: int, age_s: float, *, interactive: bool = False
) -> Followup:
    """The next look at a batch of ``count`` records, ``age_s`` old, looked at ``polls`` times.

    An early look is marked so: a bulk job's waits in the limiter's bulk line when it comes due, or goes
    back to the schedule (``back_to_schedule``) when its turn would come later than that; an interactive
    job's takes the first lane (a few GETs, no credit), so a lone contact beside a backfill comes back fast.
    """
    scheduled = rt.poll_schedule.next_delay_s(polls, age_s, rt.rng)
    if rt.settings.poll_early:
        early = early_delay_s(age_s, rt.processing.observed_s(count))
        if early is not None:
            early *= rt.rng.uniform(1, 1 + EARLY_JITTER)
            if early < scheduled:
                return followup.poll(batch_id, seq, early, early=True)
    return followup.poll(batch_id, seq, scheduled)


def back_to_schedule(rt: Runtime, batch_id: str, seq: int, polls: int, since_last_look_s: float) -> Followup:
    """An early look that found no room: the look the schedule had planned, counted from the last one."""
    scheduled = rt.poll_schedule.delay_s(polls, rt.rng)
    return followup.poll(batch_id, seq, max(0.0, scheduled - since_last_look_s))
