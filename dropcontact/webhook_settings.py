"""The account's webhook settings at the API: its default callback URL and the old docs' subscriptions.

``DropcontactClient`` has these methods (it is a ``WebhookSettings``); they go through its one
``_call``, so they get its timeouts, its error mapping and its scrubbing of the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dropq.dropcontact.errors import UnexpectedResponseError
from dropq.dropcontact.responses import Route, Subscription, subscription_from, subscription_id_of

__all__ = ["DEFAULT_EVENT_TYPE", "WebhookSettings"]

# The only event the legacy subscriptions API documents.
DEFAULT_EVENT_TYPE = "enrich_api_result"
# Legacy subscription throttles, as documented: period_s 1-60 and max_webhooks_per_period 1-100.
_PERIOD_S_RANGE = (1, 60)
_MAX_WEBHOOKS_RANGE = (1, 100)


class WebhookSettings:
    """The webhook endpoints, for a client that sends calls (``DropcontactClient``)."""

    def _call(
        self,
        method: str,
        path: str,
        *,
        route: Route,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> Any:
        raise NotImplementedError

    def _unexpected(self, route: Route, body: Any, what: str, request_id: str | None = None) -> UnexpectedResponseError:
        raise NotImplementedError

    # -- default webhook ---------------------------------------------------------------------------------------

    def get_default_webhook(self) -> str | None:
        """Return the account's default callback URL (``GET /v1/enrich/webhook``), or None when none is set.

        Raises:
            DropcontactError: the call failed.
        """
        answer = self._call("GET", "/v1/enrich/webhook", route=Route.WEBHOOK)
        if not isinstance(answer, Mapping) or answer.get("success") is False:
            raise self._unexpected(Route.WEBHOOK, answer, "the answer is not a success")
        url = answer.get("callback_url")
        return url if isinstance(url, str) and url else None

    def set_default_webhook(self, url: str) -> str:
        """Set the account's default callback URL (``PUT /v1/enrich/webhook``).

        Args:
            url: an http(s) URL; a batch's ``custom_callback_url`` takes precedence over it.

        Returns:
            The URL as the API stored it.

        Raises:
            DropcontactError: the call failed (``InvalidRequestError`` for a 422).
        """
        answer = self._call("PUT", "/v1/enrich/webhook", route=Route.WEBHOOK, body={"callback_url": url})
        stored = answer.get("callback_url") if isinstance(answer, Mapping) else None
        if not isinstance(stored, str) or answer.get("success") is False:
            raise self._unexpected(Route.WEBHOOK, answer, "the answer carries no callback_url")
        return stored

    def delete_default_webhook(self) -> None:
        """Remove the account's default callback URL (``DELETE /v1/enrich/webhook``).

        Raises:
            NotFoundError: there was none to delete.
            DropcontactError: the call failed.
        """
        answer = self._call("DELETE", "/v1/enrich/webhook", route=Route.WEBHOOK_DELETE)
        if isinstance(answer, Mapping) and answer.get("success") is False:
            raise self._unexpected(Route.WEBHOOK_DELETE, answer, "the answer is not a success")

    # -- legacy subscriptions (old docs; absent from the new reference) ---------------------------------------

    def create_subscription(
        self,
        callback_url: str,
        *,
        event_type: str = DEFAULT_EVENT_TYPE,
        active: bool = True,
        period_s: int | None = None,
        max_webhooks_per_period: int | None = None,
    ) -> str:
        """Create a webhook subscription (``POST /v1/webhooks/subscriptions``, old docs).

        Args:
            callback_url: where events are pushed.
            event_type: the event; the only documented one is ``enrich_api_result``.
            active: False creates it paused.
            period_s: throttle period, 1 to 60 s.
            max_webhooks_per_period: pushes allowed per period, 1 to 100.

        Returns:
            The subscription's id.

        Raises:
            ValueError: a throttle outside its documented range.
            DropcontactError: the call failed or the answer carries no id.
        """
        body: dict[str, Any] = {"event_type": event_type, "active": active, "callback_url": callback_url}
        body.update(_throttles(period_s, max_webhooks_per_period))
        answer = self._call("POST", "/v1/webhooks/subscriptions", route=Route.SUBSCRIPTIONS, body=body)
        item = answer.get("data", answer) if isinstance(answer, Mapping) else None
        found = subscription_id_of(item) or subscription_id_of(answer)
        if found is None:
            raise self._unexpected(Route.SUBSCRIPTIONS, answer, "the answer carries no subscription id")
        return found

    def list_subscriptions(self) -> list[Subscription]:
        """List the webhook subscriptions (``GET /v1/webhooks/subscriptions``, old docs).

        Raises:
            DropcontactError: the call failed or the answer holds no list.
        """
        answer = self._call("GET", "/v1/webhooks/subscriptions", route=Route.SUBSCRIPTIONS)
        items: Any = answer
        if isinstance(answer, Mapping):
            items = next((answer[key] for key in ("data", "subscriptions") if isinstance(answer.get(key), list)), None)
        if not isinstance(items, list):
            raise self._unexpected(Route.SUBSCRIPTIONS, answer, "the answer holds no list of subscriptions")
        return [subscription_from(item) for item in items if isinstance(item, Mapping) and subscription_id_of(item)]

    def update_subscription(
        self,
        subscription_id: str,
        *,
        callback_url: str | None = None,
        active: bool | None = None,
        period_s: int | None = None,
        max_webhooks_per_period: int | None = None,
    ) -> None:
        """Change a subscription (``PUT /v1/webhooks/subscriptions/{id}``); ``active=False`` pauses it.

        Args:
            subscription_id: from ``create_subscription``.
            callback_url: a new URL.
            active: pause or resume.
            period_s: a new throttle period, 1 to 60 s.
            max_webhooks_per_period: a new push allowance, 1 to 100.

        Raises:
            ValueError: nothing to change, or a throttle outside its documented range.
            NotFoundError: no such subscription.
            DropcontactError: the call failed.
        """
        body: dict[str, Any] = {"callback_url": callback_url, "active": active}
        body = {key: value for key, value in body.items() if value is not None}
        body.update(_throttles(period_s, max_webhooks_per_period))
        if not body:
            raise ValueError("update_subscription needs at least one field to change")
        path = f"/v1/webhooks/subscriptions/{_path_id(subscription_id)}"
        answer = self._call("PUT", path, route=Route.SUBSCRIPTION, body=body)
        if isinstance(answer, Mapping) and answer.get("success") is False:
            raise self._unexpected(Route.SUBSCRIPTION, answer, "the answer is not a success")

    def delete_subscription(self, subscription_id: str) -> None:
        """Delete a subscription (``DELETE /v1/webhooks/subscriptions/{id}``).

        Raises:
            NotFoundError: no such subscription.
            DropcontactError: the call failed.
        """
        path = f"/v1/webhooks/subscriptions/{_path_id(subscription_id)}"
        answer = self._call("DELETE", path, route=Route.SUBSCRIPTION)
        if isinstance(answer, Mapping) and answer.get("success") is False:
            raise self._unexpected(Route.SUBSCRIPTION, answer, "the answer is not a success")


def _path_id(value: str) -> str:
    if not isinstance(value, str) or not value or "/" in value:
        raise ValueError(f"an id must be a non-empty string without '/', got {value!r}")
    return value


def _throttles(period_s: int | None, max_webhooks_per_period: int | None) -> dict[str, int]:
    chosen: dict[str, int] = {}
    for name, value, (low, high) in (
        ("period_s", period_s, _PERIOD_S_RANGE),
        ("max_webhooks_per_period", max_webhooks_per_period, _MAX_WEBHOOKS_RANGE),
    ):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
        chosen[name] = value
    return chosen
