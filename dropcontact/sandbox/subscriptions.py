"""Webhook targets of the account: the default URL and the old docs' subscriptions, with their throttle.

Pure. A subscription (``/v1/webhooks/subscriptions``, old docs) receives every
``enrich_api_result`` event of the account while ``active``, at most
``max_webhooks_per_period`` pushes in any ``period_s`` seconds; pushes over that
wait for the next free slot. The old docs' recommended values (5 s, 30) are the
defaults, and their ranges (1-60 s, 1-100) are enforced with a 422.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from dropq.dropcontact.sandbox import envelopes
from dropq.errors import SandboxRequestError

__all__ = ["Subscription", "SubscriptionError", "EVENT_TYPE", "new_subscription", "edit_subscription"]

EVENT_TYPE = "enrich_api_result"
# The old docs' recommended throttle, used when a subscription gives none.
DEFAULT_PERIOD_S = 5
DEFAULT_MAX_WEBHOOKS_PER_PERIOD = 30
_PERIOD_RANGE = (1, 60)
_MAX_PER_PERIOD_RANGE = (1, 100)


class SubscriptionError(SandboxRequestError):
    """A subscription body breaks a rule; ``body`` is the 422 answer."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body.decode())
        self.body = body


@dataclass(slots=True)
class Subscription:
    """One webhook subscription and the times of its recent pushes."""

    id: str
    callback_url: str
    active: bool
    period_s: int = DEFAULT_PERIOD_S
    max_webhooks_per_period: int = DEFAULT_MAX_WEBHOOKS_PER_PERIOD
    event_type: str = EVENT_TYPE
    sent_at: deque[float] = field(default_factory=deque)

    def to_dict(self) -> dict[str, object]:
        """The subscription as the API lists it."""
        return {
            "id": self.id,
            "event_type": self.event_type,
            "active": self.active,
            "callback_url": self.callback_url,
            "period_s": self.period_s,
            "max_webhooks_per_period": self.max_webhooks_per_period,
        }

    def free_slots(self, now: float) -> int:
        """How many pushes the throttle allows at ``now``."""
        while self.sent_at and self.sent_at[0] <= now - self.period_s:
            self.sent_at.popleft()
        return max(0, self.max_webhooks_per_period - len(self.sent_at))

    def next_slot_at(self) -> float:
        """When the oldest push in the period leaves it (only meaningful when no slot is free)."""
        return self.sent_at[0] + self.period_s if self.sent_at else 0.0

    def record_push(self, now: float) -> None:
        """Note a push at ``now`` against the throttle."""
        self.sent_at.append(now)


def _fail(loc: str, msg: str, kind: str) -> SubscriptionError:
    return SubscriptionError(envelopes.validation_body(["body", loc], msg, kind))


def _check_fields(body: dict[str, object], present: set[str]) -> dict[str, object]:
    values: dict[str, object] = {}
    if "callback_url" in present:
        url = body["callback_url"]
        if not isinstance(url, str) or not url:
            raise _fail("callback_url", "Input should be a valid string", "string_type")
        values["callback_url"] = url
    if "active" in present:
        if not isinstance(body["active"], bool):
            raise _fail("active", "Input should be a valid boolean", "bool_type")
        values["active"] = body["active"]
    for name, (low, high) in (("period_s", _PERIOD_RANGE), ("max_webhooks_per_period", _MAX_PER_PERIOD_RANGE)):
        if name in present:
            value = body[name]
            if isinstance(value, bool) or not isinstance(value, int):
                raise _fail(name, "Input should be a valid integer", "int_type")
            if not low <= value <= high:
                raise _fail(name, f"Input should be between {low} and {high}", "range_error")
            values[name] = value
    return values


def new_subscription(subscription_id: str, body: object) -> Subscription:
    """Build a subscription from a create body.

    Raises:
        SubscriptionError: a required field is missing or a value is out of range (a 422).
    """
    if not isinstance(body, dict):
        raise SubscriptionError(envelopes.validation_body(["body"], "Input should be a valid dictionary", "dict_type"))
    for required in ("event_type", "active", "callback_url"):
        if required not in body:
            raise _fail(required, "Field required", "missing")
    if body["event_type"] != EVENT_TYPE:
        raise _fail("event_type", f"Input should be '{EVENT_TYPE}'", "literal_error")
    values = _check_fields(body, set(body))
    return Subscription(id=subscription_id, **values)  # type: ignore[arg-type]


def edit_subscription(subscription: Subscription, body: object) -> None:
    """Apply an edit body: ``callback_url``, ``period_s``, ``max_webhooks_per_period``, ``active``.

    Raises:
        SubscriptionError: ``event_type`` is given (it cannot change) or a value is bad (a 422).
    """
    if not isinstance(body, dict):
        raise SubscriptionError(envelopes.validation_body(["body"], "Input should be a valid dictionary", "dict_type"))
    if "event_type" in body:
        raise _fail("event_type", "event_type cannot be changed: delete and recreate the subscription", "value_error")
    for name, value in _check_fields(body, set(body)).items():
        setattr(subscription, name, value)
