"""The sandbox's fault injection over real HTTP: forced statuses, storms, slow answers, dropped connections."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from dropq.dropcontact.sandbox import SandboxServer
from tests.support.sandbox import post_batch

RATE_LIMITED = {"error": True, "reason": "Too many requests, try again in a few seconds", "success": False}


def _credits(sandbox: SandboxServer, **headers: str) -> requests.Response:
    return requests.get(
        f"{sandbox.url}/v1/account/credits", headers={"X-Access-Token": sandbox.api_key, **headers}, timeout=10
    )


def test_a_forced_500_answers_with_detail(sandbox: SandboxServer) -> None:
    """X-Sandbox-Fault: 500 gives FastAPI's 500 body."""
    response = post_batch(sandbox, {"data": [{"company": "Acme"}]}, **{"X-Sandbox-Fault": "500"})
    assert (response.status_code, response.json()) == (500, {"detail": "Internal Server Error"})
    assert sandbox.stats()["batches_received"] == 0


@pytest.mark.parametrize(
    ("status", "title"), [(503, "Service Unavailable"), (504, "Gateway Timeout"), (524, "A timeout occurred")]
)
def test_forced_cdn_errors_answer_an_html_page(sandbox: SandboxServer, status: int, title: str) -> None:
    """503, 504 and 524 come from the CDN in front of the API: HTML, not JSON."""
    response = post_batch(sandbox, {"data": [{"company": "Acme"}]}, **{"X-Sandbox-Fault": str(status)})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert f"<title>{status} {title}</title>" in response.text


def test_an_error_probability_of_one_fails_every_request_with_the_chosen_statuses(sandbox: SandboxServer) -> None:
    """error_probability=1 with error_statuses=[503] answers 503 to everything, and the stats count them."""
    sandbox.configure(error_probability=1.0, error_statuses=[503])
    assert {_credits(sandbox).status_code for _ in range(5)} == {503}
    assert sandbox.stats()["faults"] == {"503": 5}


def test_a_timed_storm_answers_429_to_everything_then_ends(sandbox: SandboxServer) -> None:
    """storm_s=0.3: every request gets 429 with the rate-limit envelope, then they pass again."""
    sandbox.configure(storm_s=0.3)
    response = post_batch(sandbox, {"data": [{"company": "Acme"}]})
    assert (response.status_code, response.json()) == (429, RATE_LIMITED)
    deadline = time.monotonic() + 3
    while _credits(sandbox).status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _credits(sandbox).status_code == 200
    assert sandbox.stats()["rate_limited"] >= 1


def test_a_storm_probability_of_one_answers_429_to_every_request(sandbox: SandboxServer) -> None:
    """storm_probability=1 refuses everything with 429."""
    sandbox.configure(storm_probability=1.0)
    assert [_credits(sandbox).status_code for _ in range(3)] == [429, 429, 429]
    assert sandbox.stats()["rate_limited"] == 3


def test_a_forced_429_needs_no_configuration(sandbox: SandboxServer) -> None:
    """X-Sandbox-Fault: 429 answers one request 429."""
    response = post_batch(sandbox, {"data": [{"company": "Acme"}]}, **{"X-Sandbox-Fault": "429"})
    assert (response.status_code, response.json()) == (429, RATE_LIMITED)


def test_a_slow_answer_arrives_late_and_a_short_read_timeout_fails(sandbox: SandboxServer) -> None:
    """slow=0.5 holds the answer: a client with a 0.1 s read timeout gives up, a patient one gets it."""
    with pytest.raises(requests.Timeout):
        requests.get(
            f"{sandbox.url}/v1/account/credits",
            headers={"X-Access-Token": sandbox.api_key, "X-Sandbox-Fault": "slow=0.5"},
            timeout=(5, 0.1),
        )
    started = time.monotonic()
    assert _credits(sandbox, **{"X-Sandbox-Fault": "slow=0.3"}).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_a_dropped_connection_gets_no_answer_and_handles_nothing(sandbox: SandboxServer) -> None:
    """drop closes the connection unanswered: the client sees a connection error and no batch is taken."""
    with pytest.raises(requests.ConnectionError):
        post_batch(sandbox, {"data": [{"company": "Acme"}]}, **{"X-Sandbox-Fault": "drop"})
    stats = sandbox.stats()
    assert (stats["batches_received"], stats["credits_charged"], stats["faults"]) == (0, 0, {"drop": 1})


def test_a_lost_response_still_takes_and_charges_the_batch(sandbox: SandboxServer) -> None:
    """lost-response handles the POST, then drops the connection: the batch is charged though the client saw nothing."""
    with pytest.raises(requests.ConnectionError):
        post_batch(sandbox, {"data": [{"company": "Acme"}]}, **{"X-Sandbox-Fault": "lost-response"})
    stats = sandbox.stats()
    assert (stats["batches_received"], stats["credits_charged"], stats["faults"]) == (1, 1, {"lost_response": 1})


def test_drop_probability_drops_connections_at_random_but_reproducibly(sandbox: SandboxServer) -> None:
    """With drop_probability=0.5 and the fixed seed, the same requests drop on every run."""

    def run() -> list[bool]:
        outcomes = []
        for _ in range(8):
            try:
                _credits(sandbox)
                outcomes.append(True)
            except requests.ConnectionError:
                outcomes.append(False)
        return outcomes

    sandbox.reset(drop_probability=0.5)
    first = run()
    sandbox.reset(drop_probability=0.5)
    assert run() == first
    assert True in first and False in first


def test_an_unknown_fault_token_is_a_clear_400(sandbox: SandboxServer) -> None:
    """A typo in X-Sandbox-Fault is refused rather than silently ignored."""
    response = _credits(sandbox, **{"X-Sandbox-Fault": "explode"})
    assert (response.status_code, response.json()) == (400, {"detail": "unknown X-Sandbox-Fault token 'explode'"})


def test_an_answer_delay_holds_every_answer_without_serialising_them(sandbox: SandboxServer) -> None:
    """answer_delay_s is a remote API's latency: each answer waits, 30 requests in flight wait together."""
    sandbox.configure(answer_delay_s=0.4)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(lambda _: _credits(sandbox).status_code, range(30)))
    elapsed = time.monotonic() - started
    assert statuses == [200] * 30
    assert 0.4 <= elapsed < 2.0, f"30 answers held 0.4 s each took {elapsed:.2f} s"
