"""Webhook pushes waiting to be sent: released at once, or as a subscription's throttle allows.

Pure. Each push is decided here, when it is released: lost (0 copies), sent
twice, or sent once, from the batch's forced fault or the configured
probabilities, so the background pusher only does the I/O.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from dropq.dropcontact.sandbox.config import SandboxConfig
from dropq.dropcontact.sandbox.stats import SandboxStats
from dropq.dropcontact.sandbox.subscriptions import Subscription

__all__ = ["WebhookDelivery", "WebhookOutbox"]


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One push to make: where, what, and how many copies (0 = lost, 2 = duplicated)."""

    url: str
    body: bytes
    request_id: str
    copies: int


@dataclass(frozen=True, slots=True)
class _Queued:
    subscription_id: str
    request_id: str
    body: bytes
    fault: str | None


class WebhookOutbox:
    """Pushes due now, and pushes held back by a subscription's throttle."""

    def __init__(self) -> None:
        self._ready: list[WebhookDelivery] = []
        self._queued: deque[_Queued] = deque()

    def __len__(self) -> int:
        return len(self._ready) + len(self._queued)

    def push_now(
        self,
        url: str,
        body: bytes,
        request_id: str,
        fault: str | None,
        *,
        env: tuple[SandboxConfig, random.Random, SandboxStats],
    ) -> None:
        """Queue a push to a callback URL or the default webhook URL (not throttled)."""
        self._ready.append(WebhookDelivery(url, body, request_id, _copies(fault, *env)))

    def queue_for(self, subscription_id: str, body: bytes, request_id: str, fault: str | None) -> None:
        """Queue a push to a subscription, to go out when its throttle has a free slot."""
        self._queued.append(_Queued(subscription_id, request_id, body, fault))

    def release(
        self, now: float, subscriptions: dict[str, Subscription], env: tuple[SandboxConfig, random.Random, SandboxStats]
    ) -> list[WebhookDelivery]:
        """Take every push that may go out at ``now``; pushes to deleted subscriptions are dropped."""
        released, self._ready = self._ready, []
        kept: deque[_Queued] = deque()
        for item in self._queued:
            subscription = subscriptions.get(item.subscription_id)
            if subscription is None:
                continue
            if subscription.active and subscription.free_slots(now) > 0:
                subscription.record_push(now)
                copies = _copies(item.fault, *env)
                released.append(WebhookDelivery(subscription.callback_url, item.body, item.request_id, copies))
            else:
                kept.append(item)
        self._queued = kept
        return released

    def next_release_at(self, subscriptions: dict[str, Subscription]) -> float | None:
        """When a held-back push may go out next; None when nothing waits on an active subscription."""
        if self._ready:
            return float("-inf")
        times = [
            subscriptions[item.subscription_id].next_slot_at()
            for item in self._queued
            if item.subscription_id in subscriptions and subscriptions[item.subscription_id].active
        ]
        return min(times, default=None)


def _copies(fault: str | None, config: SandboxConfig, rng: random.Random, stats: SandboxStats) -> int:
    if fault == "lost" or (
        fault is None and config.webhook_loss_probability and rng.random() < config.webhook_loss_probability
    ):
        stats.webhooks_lost += 1
        return 0
    if fault == "duplicate" or (
        fault is None and config.webhook_duplicate_probability and rng.random() < config.webhook_duplicate_probability
    ):
        stats.webhooks_duplicated += 1
        return 2
    return 1
