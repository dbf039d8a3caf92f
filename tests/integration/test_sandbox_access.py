"""The sandbox's gatekeeping over real HTTP: the access token and the rate limit."""

from __future__ import annotations

import time

import pytest
import requests

from dropq.dropcontact.sandbox import SandboxServer
from tests.support.sandbox import post_batch

RATE_LIMITED = {"error": True, "reason": "Too many requests, try again in a few seconds", "success": False}
ENDPOINTS = [
    ("POST", "/v1/enrich/all"),
    ("GET", "/v1/enrich/all/qzmxkpvlrtdnhwa"),
    ("PUT", "/v1/enrich/webhook"),
    ("GET", "/v1/enrich/webhook"),
    ("DELETE", "/v1/enrich/webhook"),
    ("POST", "/v1/webhooks/subscriptions"),
    ("GET", "/v1/webhooks/subscriptions"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("headers", [{}, {"X-Access-Token": "wrong"}], ids=["missing", "wrong"])
def test_a_missing_or_wrong_token_gets_401_with_the_reason_envelope(
    sandbox: SandboxServer, method: str, path: str, headers: dict[str, str]
) -> None:
    """Every endpoint refuses a missing or wrong X-Access-Token with 401 and the standard envelope."""
    response = requests.request(method, f"{sandbox.url}{path}", json={"data": [{}]}, headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json() == {"error": True, "reason": "Missing or invalid API key", "success": False}


def test_the_credits_endpoint_gives_its_401_in_detail(sandbox: SandboxServer) -> None:
    """GET /v1/account/credits carries its errors in detail, as documented."""
    response = requests.get(f"{sandbox.url}/v1/account/credits", headers={"X-Access-Token": "nope"}, timeout=5)
    assert (response.status_code, response.json()) == (401, {"detail": "Missing or invalid API key"})


def test_only_the_configured_key_is_accepted(sandbox: SandboxServer) -> None:
    """The default key is "sandbox"; after a change only the new key works, and it shows in no stats or config."""
    assert sandbox.api_key == "sandbox"
    sandbox.configure(api_key="k-9f3c1e")
    assert post_batch(sandbox, {"data": [{}]}).status_code == 200
    old = requests.get(f"{sandbox.url}/v1/account/credits", headers={"X-Access-Token": "sandbox"}, timeout=5)
    assert old.status_code == 401
    config_text = requests.get(f"{sandbox.url}/_sandbox/config", timeout=5).text
    stats_text = requests.get(f"{sandbox.url}/_sandbox/stats", timeout=5).text
    assert "k-9f3c1e" not in config_text and "k-9f3c1e" not in stats_text


def test_the_request_over_the_limit_in_a_window_gets_429(sandbox: SandboxServer) -> None:
    """With the default 60 per window (widened to 30 s so timing cannot flake), the 61st request gets 429."""
    sandbox.configure(rate_window_s=30)
    headers = {"X-Access-Token": sandbox.api_key}
    with requests.Session() as session:
        statuses = [
            session.get(f"{sandbox.url}/v1/account/credits", headers=headers, timeout=5).status_code for _ in range(60)
        ]
        refused = session.post(f"{sandbox.url}/v1/enrich/all", json={"data": [{}]}, headers=headers, timeout=5)
    assert statuses == [200] * 60
    assert (refused.status_code, refused.json()) == (429, RATE_LIMITED)
    stats = sandbox.stats()
    assert stats["rate_limited"] == 1
    assert stats["max_requests_in_1s_window"] >= stats["max_accepted_requests_in_1s_window"]


def test_the_credits_endpoint_gives_its_429_in_detail(sandbox: SandboxServer) -> None:
    """Over the limit, the credits endpoint answers 429 with detail."""
    sandbox.configure(rate_limit=1, rate_window_s=30)
    headers = {"X-Access-Token": sandbox.api_key}
    requests.get(f"{sandbox.url}/v1/account/credits", headers=headers, timeout=5)
    response = requests.get(f"{sandbox.url}/v1/account/credits", headers=headers, timeout=5)
    assert (response.status_code, response.json()) == (429, {"detail": "Too many requests, try again in a few seconds"})


def test_the_window_slides_so_requests_pass_again_once_old_ones_leave_it(sandbox: SandboxServer) -> None:
    """With 2 per 0.2 s, the third request is refused, and one is accepted again after the window has passed."""
    sandbox.configure(rate_limit=2, rate_window_s=0.2)
    headers = {"X-Access-Token": sandbox.api_key}
    url = f"{sandbox.url}/v1/account/credits"
    first = [requests.get(url, headers=headers, timeout=5).status_code for _ in range(3)]
    assert first[:2] == [200, 200] and first[2] == 429
    deadline = time.monotonic() + 3
    status = 429
    while status == 429 and time.monotonic() < deadline:
        time.sleep(0.02)
        status = requests.get(url, headers=headers, timeout=5).status_code
    assert status == 200
