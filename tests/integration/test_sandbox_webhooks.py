"""The sandbox's webhooks over real HTTP: targets, precedence, payload, throttle, lost and doubled pushes."""

from __future__ import annotations

import time

import requests

from dropq.dropcontact.sandbox import SandboxServer
from tests.support.sandbox import WebhookSink, post_batch, wait_for_results

RECORD = {"first_name": "Ada", "last_name": "Lovelace", "website": "example.com", "custom_fields": {"id": "a1"}}


def _call(sandbox: SandboxServer, method: str, path: str, body: object = None) -> requests.Response:
    return requests.request(
        method, f"{sandbox.url}{path}", json=body, headers={"X-Access-Token": sandbox.api_key}, timeout=5
    )


def _wait_idle(sandbox: SandboxServer, timeout_s: float = 5.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    stats = sandbox.stats()
    while (stats["batches_completed"] < stats["batches_received"] or stats["webhooks_pending"]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.02)
        stats = sandbox.stats()
    return stats


def test_results_are_pushed_to_the_custom_callback_url_as_an_event_array(
    sandbox: SandboxServer, webhook_sink: WebhookSink
) -> None:
    """The push is the old docs' event array, carrying the same data as the GET and the request_id."""
    submitted = post_batch(sandbox, {"data": [RECORD], "custom_callback_url": webhook_sink.url}).json()
    [payload] = webhook_sink.wait_for(1)
    assert isinstance(payload, list) and len(payload) == 1
    event = payload[0]
    assert set(event) == {"id", "version", "event_type", "occurred_at", "data"}
    assert (event["version"], event["event_type"]) == (1, "enrich_api_result")
    assert isinstance(event["id"], str) and event["id"]
    assert abs(event["occurred_at"] - time.time()) < 60
    assert event["data"]["request_id"] == submitted["request_id"]
    assert event["data"]["data"] == wait_for_results(sandbox, submitted["request_id"])["data"]
    assert "credits_left" not in event["data"]


def test_the_default_webhook_url_can_be_set_read_and_deleted(sandbox: SandboxServer) -> None:
    """PUT sets it, GET reads it (null when unset), DELETE removes it, and a second DELETE gets the 404."""
    assert _call(sandbox, "GET", "/v1/enrich/webhook").json() == {"error": False, "success": True, "callback_url": None}
    put = _call(sandbox, "PUT", "/v1/enrich/webhook", {"callback_url": "https://example.com/cb"})
    assert (put.status_code, put.json()) == (
        200,
        {"error": False, "success": True, "callback_url": "https://example.com/cb"},
    )
    got = _call(sandbox, "GET", "/v1/enrich/webhook").json()
    assert got == {"error": False, "success": True, "callback_url": "https://example.com/cb"}
    deleted = _call(sandbox, "DELETE", "/v1/enrich/webhook")
    assert (deleted.status_code, deleted.json()) == (200, {"detail": "Default webhook URL deleted"})
    again = _call(sandbox, "DELETE", "/v1/enrich/webhook")
    assert (again.status_code, again.json()) == (
        404,
        {"error": True, "reason": "No default webhook URL to delete", "success": False},
    )


def test_setting_the_default_webhook_without_a_url_is_a_422(sandbox: SandboxServer) -> None:
    """A PUT body without callback_url gets FastAPI's validation error."""
    response = _call(sandbox, "PUT", "/v1/enrich/webhook", {})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"loc": ["body", "callback_url"], "msg": "Field required", "type": "missing"}]
    }


def test_the_custom_callback_url_takes_precedence_over_the_default(
    sandbox: SandboxServer, webhook_sink: WebhookSink
) -> None:
    """With both set, only the request's URL gets the push; without one, the default URL does."""
    _call(sandbox, "PUT", "/v1/enrich/webhook", {"callback_url": webhook_sink.url + "/default"})
    custom = post_batch(sandbox, {"data": [RECORD], "custom_callback_url": webhook_sink.url}).json()["request_id"]
    by_default = post_batch(sandbox, {"data": [RECORD | {"first_name": "Bo"}]}).json()["request_id"]
    payloads = webhook_sink.wait_for(2)
    _wait_idle(sandbox)
    assert sorted(p[0]["data"]["request_id"] for p in payloads) == sorted([custom, by_default])  # type: ignore[index]
    assert sandbox.stats()["webhooks_sent"] == 2


def test_subscriptions_can_be_created_listed_edited_and_deleted(sandbox: SandboxServer) -> None:
    """The old docs' subscription CRUD, with its checks on event_type and the throttle ranges."""
    body = {"event_type": "enrich_api_result", "active": True, "callback_url": "http://x/cb", "period_s": 5}
    created = _call(sandbox, "POST", "/v1/webhooks/subscriptions", body)
    assert created.status_code == 200
    subscription_id = created.json()["id"]
    assert created.json() == {"error": False, "id": subscription_id, "success": True}
    listed = _call(sandbox, "GET", "/v1/webhooks/subscriptions").json()
    assert listed["data"] == [
        {
            "id": subscription_id,
            "event_type": "enrich_api_result",
            "active": True,
            "callback_url": "http://x/cb",
            "period_s": 5,
            "max_webhooks_per_period": 30,
        }
    ]
    edited = _call(sandbox, "PUT", f"/v1/webhooks/subscriptions/{subscription_id}", {"active": False})
    assert edited.json()["data"]["active"] is False
    refused = _call(sandbox, "PUT", f"/v1/webhooks/subscriptions/{subscription_id}", {"event_type": "other"})
    assert refused.status_code == 422
    out_of_range = _call(sandbox, "POST", "/v1/webhooks/subscriptions", body | {"period_s": 61})
    assert out_of_range.json() == {
        "detail": [{"loc": ["body", "period_s"], "msg": "Input should be between 1 and 60", "type": "range_error"}]
    }
    deleted = _call(sandbox, "DELETE", f"/v1/webhooks/subscriptions/{subscription_id}")
    assert (deleted.status_code, deleted.json()) == (200, {"detail": "Subscription deleted"})
    missing = _call(sandbox, "DELETE", f"/v1/webhooks/subscriptions/{subscription_id}")
    assert (missing.status_code, missing.json()) == (404, {"detail": "Subscription not found"})


def test_active_subscriptions_get_pushes_within_their_throttle(
    sandbox: SandboxServer, webhook_sink: WebhookSink
) -> None:
    """With no callback or default URL, a subscription gets the pushes, at most max_webhooks_per_period per period_s."""
    sandbox.configure(processing_min_s=0.0, processing_max_s=0.0)
    subscription = {
        "event_type": "enrich_api_result",
        "active": True,
        "callback_url": webhook_sink.url,
        "period_s": 1,
        "max_webhooks_per_period": 2,
    }
    _call(sandbox, "POST", "/v1/webhooks/subscriptions", subscription)
    for index in range(3):
        post_batch(sandbox, {"data": [RECORD | {"first_name": f"P{index}"}]})
    payloads = webhook_sink.wait_for(3)
    assert len(payloads) == 3
    times = webhook_sink.arrival_times
    assert times[2] - times[0] >= 0.9


def test_a_push_can_be_lost_or_doubled_on_request(sandbox: SandboxServer, webhook_sink: WebhookSink) -> None:
    """X-Sandbox-Fault webhook-lost sends nothing; webhook-duplicate sends the same event twice."""
    lost = {"data": [RECORD], "custom_callback_url": webhook_sink.url}
    post_batch(sandbox, lost, **{"X-Sandbox-Fault": "webhook-lost"})
    doubled = post_batch(
        sandbox, lost | {"data": [RECORD | {"first_name": "Bo"}]}, **{"X-Sandbox-Fault": "webhook-duplicate"}
    )
    payloads = webhook_sink.wait_for(2)
    stats = _wait_idle(sandbox)
    assert len(payloads) == 2 and payloads[0] == payloads[1]
    assert payloads[0][0]["data"]["request_id"] == doubled.json()["request_id"]  # type: ignore[index]
    assert (stats["webhooks_lost"], stats["webhooks_duplicated"], stats["webhooks_sent"]) == (1, 1, 2)


def test_webhook_loss_and_duplication_probabilities_apply_to_every_push(
    sandbox: SandboxServer, webhook_sink: WebhookSink
) -> None:
    """With loss probability 1 nothing arrives; with duplicate probability 1 everything arrives twice."""
    sandbox.configure(webhook_loss_probability=1.0)
    post_batch(sandbox, {"data": [RECORD], "custom_callback_url": webhook_sink.url})
    assert _wait_idle(sandbox)["webhooks_lost"] == 1
    sandbox.configure(webhook_loss_probability=0.0, webhook_duplicate_probability=1.0)
    post_batch(sandbox, {"data": [RECORD | {"first_name": "Bo"}], "custom_callback_url": webhook_sink.url})
    assert len(webhook_sink.wait_for(2)) == 2
    assert _wait_idle(sandbox)["webhooks_duplicated"] == 1


def test_a_failing_receiver_is_counted_not_retried(sandbox: SandboxServer, webhook_sink: WebhookSink) -> None:
    """A receiver answering 500 gets one attempt, counted in webhooks_failed."""
    webhook_sink.status = 500
    post_batch(sandbox, {"data": [RECORD], "custom_callback_url": webhook_sink.url})
    webhook_sink.wait_for(1)
    stats = _wait_idle(sandbox)
    deadline = time.monotonic() + 2
    while stats["webhooks_failed"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
        stats = sandbox.stats()
    assert (stats["webhooks_sent"], stats["webhooks_failed"]) == (1, 1)
