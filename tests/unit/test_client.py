"""The client's construction and argument checks, which need no network."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
import requests

from dropq.dropcontact.client import DropcontactClient, FetchResult, FetchState

KEY = "sk_live_secret_key_123"


def test_repr_hides_the_api_key() -> None:
    """The key never shows in ``repr`` (and so in no log line that prints the client)."""
    with DropcontactClient(KEY, base_url="http://127.0.0.1:9") as client:
        assert KEY not in repr(client)
        assert "hidden" in repr(client)


def test_the_session_carries_the_key_and_a_user_agent_naming_dropq() -> None:
    """One session holds ``X-Access-Token`` and ``User-Agent: dropq/<version>``."""
    session = requests.Session()
    DropcontactClient(KEY, session=session)
    assert session.headers["X-Access-Token"] == KEY
    assert str(session.headers["User-Agent"]).startswith("dropq/")


def test_a_given_user_agent_replaces_ours() -> None:
    """``user_agent`` overrides the default."""
    session = requests.Session()
    DropcontactClient(KEY, session=session, user_agent="crm-sync/2")
    assert session.headers["User-Agent"] == "crm-sync/2"


def test_close_leaves_a_session_it_was_given_open() -> None:
    """The caller owns a session it passed in; the client only closes its own."""
    session = requests.Session()
    adapter = session.get_adapter("https://")
    with DropcontactClient(KEY, session=session):
        pass
    assert session.get_adapter("https://") is adapter


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "api_key must be a non-empty string"),
        ("abc def", "api_key contains whitespace or control characters"),
        ("abc\n", "api_key contains whitespace or control characters"),
    ],
)
def test_a_key_that_cannot_be_sent_is_refused_without_quoting_it(key: str, message: str) -> None:
    """A bad key raises at once, and the message does not repeat it."""
    with pytest.raises(ValueError, match=message) as caught:
        DropcontactClient(key)
    if key.strip():
        assert key.strip() not in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": "api.dropcontact.com"}, "base_url must start with http:// or https://"),
        ({"connect_timeout_s": 0}, "timeouts must be positive"),
        ({"read_timeout_s": -1}, "timeouts must be positive"),
    ],
)
def test_bad_settings_are_refused_at_construction(kwargs: dict[str, object], message: str) -> None:
    """A base URL without scheme or a non-positive timeout raises before any call."""
    with pytest.raises(ValueError, match=message):
        DropcontactClient(KEY, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [0, 251])
def test_a_batch_outside_one_to_250_records_is_refused_before_sending(count: int) -> None:
    """An empty or oversized batch never reaches the API (it would be a 400, or cost a request)."""
    with DropcontactClient(KEY, base_url="http://127.0.0.1:9") as client, pytest.raises(ValueError, match="1 to 250"):
        client.submit_batch([{"company": "Acme"}] * count)


@pytest.mark.parametrize(
    "kwargs", [{"period_s": 0}, {"period_s": 61}, {"max_webhooks_per_period": 101}, {"period_s": True}]
)
def test_subscription_throttles_outside_their_documented_range_are_refused(kwargs: dict[str, Any]) -> None:
    """period_s is 1-60 and max_webhooks_per_period 1-100, as the old docs say."""
    with DropcontactClient(KEY, base_url="http://127.0.0.1:9") as client, pytest.raises(ValueError):
        client.create_subscription("https://example.com/hook", **kwargs)


@pytest.mark.parametrize("request_id", ["", "a/b"])
def test_a_request_id_that_would_change_the_path_is_refused(request_id: str) -> None:
    """An empty id or one with a slash would call another route."""
    with DropcontactClient(KEY, base_url="http://127.0.0.1:9") as client, pytest.raises(ValueError):
        client.fetch_results(request_id)


def test_fetch_results_are_plain_values() -> None:
    """Results are frozen values that pickle (they cross process boundaries in tests and tools)."""
    result = FetchResult(FetchState.READY, [{"first_name": "Ada"}], 12)
    assert pickle.loads(pickle.dumps(result)) == result
    assert result.is_ready
