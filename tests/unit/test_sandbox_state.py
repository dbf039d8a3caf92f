"""The sandbox's account state on explicit times: credits, processing, retention, pushes, duplicates."""

from __future__ import annotations

import json

from dropq.dropcontact.sandbox.config import SandboxConfig
from dropq.dropcontact.sandbox.state import SandboxState
from dropq.dropcontact.sandbox.submission import Refusal, Submission, read_submission

CONFIG = SandboxConfig(processing_min_s=10, processing_max_s=10, no_email_probability=0.0, credits=100)
NOT_READY = b'{"error":false,"reason":"Request not ready yet, try again in 30 seconds","success":false}'


def _submission(records: list[dict[str, object]], **options: object) -> Submission:
    checked = read_submission(json.dumps({"data": records, **options}).encode(), {})
    assert isinstance(checked, Submission)
    return checked


def _request_id(state: SandboxState, records: list[dict[str, object]], now: float, **options: object) -> str:
    answer = state.submit(_submission(records, **options), now)
    assert answer.status == 200
    return str(json.loads(answer.body)["request_id"])


FOUND = {"first_name": "Ada", "last_name": "King", "website": "a.io"}
NOTHING = {"company": "Acme"}
VERIFY = {"email": "broken"}


def test_credits_are_charged_at_submit_and_refunded_when_done() -> None:
    """Three records cost 3 at submit; at ready time the two without an email are refunded, not the verification."""
    state = SandboxState(CONFIG, now=0.0)
    _request_id(state, [FOUND, NOTHING, VERIFY], now=0.0)
    assert state.balance == 97
    state.settle(9.9)
    assert state.balance == 97
    state.settle(10.0)
    assert (state.balance, state.stats.credits_refunded) == (98, 1)


def test_a_batch_over_the_balance_is_refused_whole() -> None:
    """With 2 credits, 3 records get 403 and nothing changes."""
    state = SandboxState(CONFIG.replace(credits=2), now=0.0)
    answer = state.submit(_submission([FOUND, FOUND, FOUND]), 0.0)
    assert answer.status == 403
    assert (state.balance, state.stats.batches_received) == (2, 0)


def test_results_are_not_ready_until_the_processing_time_has_passed() -> None:
    """Before ready_at the GET answers not ready; at ready_at it answers the data."""
    state = SandboxState(CONFIG, now=0.0)
    request_id = _request_id(state, [FOUND], now=0.0)
    assert state.fetch(request_id, 9.99).body == NOT_READY
    assert state.fetch(request_id, 10.0).body.startswith(b'{"data":[{')


def test_force_results_returns_a_done_prefix_proportional_to_elapsed_time() -> None:
    """Half-way through, half of the records are enriched and the rest echo their input."""
    state = SandboxState(CONFIG, now=0.0)
    records = [{"first_name": f"p{i}", "last_name": "x", "company": "Acme"} for i in range(4)]
    request_id = _request_id(state, records, now=0.0)
    body = json.loads(state.fetch(request_id, 5.0, force=True).body)
    assert body["status"] == "in_progress"
    assert [r["first_name"] for r in body["data"]] == ["P0", "P1", "p2", "p3"]


def test_results_expire_after_the_retention() -> None:
    """Past retention_s the id answers not ready again."""
    state = SandboxState(CONFIG.replace(retention_s=100), now=0.0)
    request_id = _request_id(state, [FOUND], now=0.0)
    assert state.fetch(request_id, 99.0).body.startswith(b'{"data"')
    assert state.fetch(request_id, 100.0).body == NOT_READY


def test_the_rate_limit_admits_the_configured_count_per_window() -> None:
    """60 requests at the same instant pass, the 61st does not; a second later they pass again."""
    state = SandboxState(CONFIG, now=0.0)
    assert all(state.admit(0.5) for _ in range(60))
    assert not state.admit(0.5)
    assert state.admit(1.5)
    assert state.stats.accepted_window.max_count == 60


def test_a_timed_storm_starts_when_configured() -> None:
    """storm_s set at t=5 refuses everything until t=7."""
    state = SandboxState(CONFIG, now=0.0)
    state.reconfigure(CONFIG.replace(storm_s=2), now=5.0)
    assert state.choose_fault(6.9, None).status == 429
    assert state.choose_fault(7.0, None).status is None


def test_the_custom_callback_wins_over_the_default_and_subscriptions() -> None:
    """One push per batch: to custom_callback_url if set, else the default URL, else each active subscription."""
    state = SandboxState(CONFIG, now=0.0)
    state.set_default_webhook({"callback_url": "http://default"})
    state.create_subscription({"event_type": "enrich_api_result", "active": True, "callback_url": "http://sub"})
    _request_id(state, [FOUND], now=0.0, custom_callback_url="http://custom")
    _request_id(state, [NOTHING], now=0.0)
    urls = sorted(delivery.url for delivery in state.take_deliveries(10.0))
    assert urls == ["http://custom", "http://default"]
    state.delete_default_webhook()
    _request_id(state, [VERIFY], now=20.0)
    assert [delivery.url for delivery in state.take_deliveries(30.0)] == ["http://sub"]


def test_subscription_pushes_respect_the_throttle() -> None:
    """With 2 pushes per 5 s, three finished batches give two pushes now and the third 5 s later."""
    state = SandboxState(CONFIG, now=0.0)
    state.create_subscription(
        {
            "event_type": "enrich_api_result",
            "active": True,
            "callback_url": "http://s",
            "period_s": 5,
            "max_webhooks_per_period": 2,
        }
    )
    for index in range(3):
        _request_id(state, [FOUND | {"first_name": f"p{index}"}], now=0.0)
    assert len(state.take_deliveries(10.0)) == 2
    assert state.next_wake_at() == 15.0
    assert state.take_deliveries(14.9) == []
    assert len(state.take_deliveries(15.0)) == 1


def test_the_same_records_in_two_accepted_batches_are_counted() -> None:
    """Re-posting a batch counts one duplicate batch and each of its records."""
    state = SandboxState(CONFIG, now=0.0)
    _request_id(state, [FOUND, NOTHING], now=0.0)
    _request_id(state, [FOUND, NOTHING], now=1.0)
    _request_id(state, [NOTHING, VERIFY], now=2.0)
    assert (state.stats.duplicate_batches_posted, state.stats.duplicate_records_posted) == (1, 3)


def test_read_submission_checks_count_before_size() -> None:
    """251 oversized records get the too-many message first."""
    big = {"company": "x", "custom_fields": {"b": "x" * 20000}}
    refusal = read_submission(json.dumps({"data": [big] * 251}).encode(), {})
    assert isinstance(refusal, Refusal)
    assert b"Too many records" in refusal.body


def test_only_the_newest_batches_are_kept_past_the_cap() -> None:
    """Past max_kept_batches, the oldest batch's results go and its id answers like an expired one."""
    state = SandboxState(CONFIG.replace(max_kept_batches=2), now=0.0)
    ids = [_request_id(state, [FOUND], now=float(i)) for i in range(3)]
    assert state.fetch(ids[0], now=20.0).body == NOT_READY
    assert b'"success":true' in state.fetch(ids[2], now=20.0).body
