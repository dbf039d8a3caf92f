"""``CreditGuard``: an account's credits in Redis, shared by every worker: balance, daily budget, pause.

- Every answer's ``credits_left`` goes to ``record_balance``.
- ``check_submit(cost)`` runs before each POST: it refuses while submits are
  paused, and reserves ``cost`` against the optional daily budget (UTC day).
- A 403 for missing credits calls ``pause_for_credits(needed)``: every submit
  of the account waits from then on (jobs wait, nothing is dropped). Only the
  caller that started the pause gets ``True``, and the warning is logged once,
  here, with what to do.
- While paused, a refused task asks ``should_recheck()``; the one worker that
  wins (at most one per re-check interval) reads the free credits endpoint and
  passes the balance to ``record_balance``, which resumes submits once the
  balance covers the refused batch. Then every task re-enqueues itself with the
  countdown of its ``Decision``. ``workers.pipeline.submit`` does exactly this::

      decision = guard.check_submit(len(batch))
      if not decision.allowed and guard.is_paused() and guard.should_recheck():
          guard.record_balance(client.get_credits())
          decision = guard.check_submit(len(batch))
      if not decision.allowed:
          re-enqueue the submit with countdown = decision.retry_after_ms / 1000
      try: answer = client.submit_batch(batch)
      except InsufficientCreditsError: guard.release(len(batch)); guard.pause_for_credits(len(batch)); re-enqueue
      guard.record_balance(answer.credits_left)

The budget counts credits as charged at submit (one per record), before the
refunds for records without an email: a conservative count. The UTC day comes
from the injected clock; workers whose clocks disagree around midnight only
move a few credits between two days.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import structlog

from dropq.workers import keys
from dropq.workers.limiter.gcra import Decision

__all__ = ["CreditGuard"]

_log = structlog.get_logger(__name__)
_HERE = Path(__file__).resolve().parent
_DAY_MS = 86_400_000

# The last known balance is kept this long after the last answer that carried it.
BALANCE_TTL_MS = 7 * _DAY_MS
# A pause lasts this long without a re-check renewing it; after that a submit tries again (and re-pauses on 403).
PAUSE_TTL_MS = _DAY_MS
# A day's budget counter outlives its day, so `dropq status` can show yesterday's.
BUDGET_TTL_MS = 2 * _DAY_MS
# What the single pause warning tells the operator to do.
_PAUSE_ADVICE = "add credits to the Dropcontact account; submits resume by themselves at the next balance re-check"


def _utc_day(now_s: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now_s))


class CreditGuard:
    """An account's credits, shared in Redis.

    Args:
        client: a Redis client (either ``decode_responses`` setting works).
        account: the account's short hash (``workers.keys.account_id``), never the API key.
        budget_per_day: credits that submits may use per UTC day (``DROPQ_CREDIT_BUDGET_PER_DAY``); None = no budget.
        recheck_s: how often a paused account re-checks its balance (``DROPQ_CREDIT_RECHECK_S``).
        clock_s: wall-clock seconds since the epoch; gives the UTC day and the pause's start.
    """

    def __init__(
        self,
        client: redis.Redis,
        account: str,
        *,
        budget_per_day: int | None = None,
        recheck_s: float = 60.0,
        clock_s: Callable[[], float] = time.time,
    ) -> None:
        if budget_per_day is not None and budget_per_day <= 0:
            raise ValueError(f"budget_per_day must be positive or None, got {budget_per_day!r}")
        if recheck_s <= 0:
            raise ValueError(f"recheck_s must be positive, got {recheck_s!r}")
        self._client = client
        self.account = account
        self.budget_per_day = budget_per_day
        self.recheck_ms = max(1, round(recheck_s * 1000))
        self._clock_s = clock_s
        self._check = client.register_script((_HERE / "credits.lua").read_text())
        self._balance = client.register_script((_HERE / "balance.lua").read_text())

    def _now_ms(self) -> int:
        return int(self._clock_s() * 1000)

    def record_balance(self, credits_left: int) -> bool:
        """Keep the balance of an answer (``credits_left``) or of the credits endpoint.

        Returns:
            True when this call ended a pause (the balance now covers the refused submit).
        """
        now_ms = self._now_ms()
        resumed = bool(
            self._balance(
                keys=[keys.credits_key(self.account), keys.credits_pause_key(self.account)],
                args=[int(credits_left), now_ms, BALANCE_TTL_MS, PAUSE_TTL_MS],
            )
        )
        if resumed:
            _log.info("credits_resumed", account=self.account, balance=int(credits_left))
        return resumed

    def check_submit(self, cost: int) -> Decision:
        """May a submit that can cost ``cost`` credits go now? Reserves them against the daily budget.

        Returns:
            Allowed; or refused while paused (retry after the next re-check) or over budget
            (retry after the next UTC midnight).
        """
        if cost < 1:
            raise ValueError(f"cost must be a positive integer, got {cost!r}")
        now_ms = self._now_ms()
        allowed, retry_after_ms = self._check(
            keys=[
                keys.credits_pause_key(self.account),
                keys.credits_recheck_key(self.account),
                keys.budget_key(self.account, _utc_day(now_ms / 1000)),
            ],
            args=[
                cost,
                "" if self.budget_per_day is None else self.budget_per_day,
                self.recheck_ms,
                _DAY_MS - now_ms % _DAY_MS,
                BUDGET_TTL_MS,
            ],
        )
        return Decision(bool(allowed), int(retry_after_ms))

    def release(self, cost: int) -> None:
        """Give back a reservation of ``check_submit`` whose POST did not happen or was refused (400, 403)."""
        if self.budget_per_day is None:
            return
        key = keys.budget_key(self.account, _utc_day(self._clock_s()))
        pipe = self._client.pipeline(transaction=True)
        pipe.decrby(key, cost)
        pipe.pexpire(key, BUDGET_TTL_MS)
        pipe.execute()

    def pause_for_credits(self, needed: int = 1) -> bool:
        """Pause every submit of the account after a 403 for missing credits.

        Args:
            needed: the credits the refused submit needed; submits resume once the balance covers them.

        Returns:
            True only for the caller that started the pause (the warning is logged once, by it).
        """
        now_ms = self._now_ms()
        started = self._client.set(
            keys.credits_pause_key(self.account),
            json.dumps({"since_ms": now_ms, "needed": max(1, int(needed))}),
            nx=True,
            px=PAUSE_TTL_MS,
        )
        if not started:
            return False
        # The 403 just said the balance is short: the first re-check waits one interval.
        self._client.set(keys.credits_recheck_key(self.account), now_ms, px=self.recheck_ms)
        _log.warning(
            "credits_paused",
            account=self.account,
            needed=int(needed),
            recheck_s=self.recheck_ms / 1000,
            action=_PAUSE_ADVICE,
        )
        return True

    def resume(self) -> bool:
        """End a pause by hand (``record_balance`` does it by itself). Returns True if one was running."""
        resumed = bool(self._client.delete(keys.credits_pause_key(self.account)))
        if resumed:
            _log.info("credits_resumed", account=self.account, balance=None)
        return resumed

    def is_paused(self) -> bool:
        """Tell whether submits of the account are paused for missing credits."""
        return bool(self._client.exists(keys.credits_pause_key(self.account)))

    def should_recheck(self) -> bool:
        """Win the right to read the free credits endpoint now: one worker per re-check interval."""
        return bool(
            self._client.set(keys.credits_recheck_key(self.account), self._now_ms(), nx=True, px=self.recheck_ms)
        )

    def status(self) -> dict[str, Any]:
        """Balance, pause and today's budget, for ``dropq status`` (JSON-ready, no secret)."""
        day = _utc_day(self._clock_s())
        pipe = self._client.pipeline(transaction=False)
        pipe.hmget(keys.credits_key(self.account), ["balance", "at_ms"])
        pipe.get(keys.credits_pause_key(self.account))
        pipe.get(keys.budget_key(self.account, day))
        (balance, at_ms), pause, spent = pipe.execute()
        paused = json.loads(pause) if pause is not None else None
        return {
            "account": self.account,
            "balance": int(balance) if balance is not None else None,
            "balance_at_ms": int(at_ms) if at_ms is not None else None,
            "paused": paused is not None,
            "paused_since_ms": paused["since_ms"] if paused else None,
            "paused_needed": paused["needed"] if paused else None,
            "budget_per_day": self.budget_per_day,
            "budget_day": day,
            "budget_spent_today": int(spent or 0),
        }
