"""The sandbox's control plane and inspection over real HTTP: stats, config, reset."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from dropq.dropcontact.sandbox import SandboxServer
from dropq.dropcontact.sandbox.app import CONTROL_KEY_HEADER
from dropq.dropcontact.sandbox.config import SandboxConfig
from dropq.http_server import HEAD_TIMEOUT_S
from tests.support.sandbox import TEST_CONTROL_KEY, get_results, post_batch, wait_for_results

KEY = {CONTROL_KEY_HEADER: TEST_CONTROL_KEY}

BATCH = [{"first_name": "Ada", "last_name": "Lovelace", "company": "Acme", "custom_fields": {"id": "1"}}]


def test_stats_count_requests_per_endpoint_template_and_status(sandbox: SandboxServer) -> None:
    """Requests are named by method and route template, answers counted by status."""
    request_id = post_batch(sandbox, {"data": BATCH}).json()["request_id"]
    get_results(sandbox, request_id)
    get_results(sandbox, "unknownid")
    stats = requests.get(f"{sandbox.url}/_sandbox/stats", timeout=5).json()
    assert stats["requests"] == {"GET /v1/enrich/all/{request_id}": 2, "POST /v1/enrich/all": 1}
    assert stats["status_counts"] == {"200": 3}
    assert (stats["batches_received"], stats["records_received"], stats["polls_not_ready"]) == (1, 1, 2)


def test_stats_report_the_same_records_posted_in_two_accepted_batches(sandbox: SandboxServer) -> None:
    """A batch POSTed twice counts as a duplicate batch and its records as duplicate records."""
    other = [{"first_name": "Bob", "company": "Acme", "custom_fields": {"id": "2"}}]
    post_batch(sandbox, {"data": BATCH})
    post_batch(sandbox, {"data": other})
    post_batch(sandbox, {"data": BATCH})
    post_batch(sandbox, {"data": BATCH + other + [{"company": "New"}]})
    stats = sandbox.stats()
    assert (stats["duplicate_batches_posted"], stats["duplicate_records_posted"]) == (1, 3)


def test_records_differing_only_in_custom_fields_are_not_duplicates(sandbox: SandboxServer) -> None:
    """custom_fields are part of a record's identity."""
    post_batch(sandbox, {"data": BATCH})
    post_batch(sandbox, {"data": [BATCH[0] | {"custom_fields": {"id": "other"}}]})
    assert sandbox.stats()["duplicate_records_posted"] == 0


def test_refused_batches_are_not_counted_as_received(sandbox: SandboxServer) -> None:
    """A 403 batch is not received, so re-sending it later is not a duplicate."""
    sandbox.configure(credits=0)
    assert post_batch(sandbox, {"data": BATCH}).status_code == 403
    sandbox.configure(credits=10)
    post_batch(sandbox, {"data": BATCH})
    stats = sandbox.stats()
    assert (stats["batches_received"], stats["duplicate_batches_posted"]) == (1, 0)


def test_config_can_be_read_and_changed_over_http(sandbox: SandboxServer) -> None:
    """GET shows the knobs without the key; POST changes some and answers the new set; a bad knob is a 400."""
    config = requests.get(f"{sandbox.url}/_sandbox/config", timeout=5).json()
    assert config["rate_limit"] == 60 and "api_key" not in config
    changed = requests.post(f"{sandbox.url}/_sandbox/config", json={"credits": 7}, headers=KEY, timeout=5).json()
    assert changed["credits"] == 7
    assert post_batch(sandbox, {"data": [{}]}).json()["credits_left"] == 7
    bad = requests.post(f"{sandbox.url}/_sandbox/config", json={"error_probability": 2}, headers=KEY, timeout=5)
    assert (bad.status_code, bad.json()) == (
        400,
        {"detail": "error_probability must be a probability between 0 and 1, got 2.0"},
    )
    unknown = requests.post(f"{sandbox.url}/_sandbox/config", json={"colour": "red"}, headers=KEY, timeout=5)
    assert unknown.status_code == 400 and unknown.json()["detail"].startswith("colour must be a known knob")


def test_reset_over_http_forgets_everything_and_restores_the_knobs(sandbox: SandboxServer) -> None:
    """POST /_sandbox/reset empties the stats and batches and undoes configuration changes."""
    sandbox.configure(credits=5)
    request_id = post_batch(sandbox, {"data": BATCH}).json()["request_id"]
    reset = requests.post(f"{sandbox.url}/_sandbox/reset", headers=KEY, timeout=5)
    assert reset.status_code == 200 and reset.json()["credits"] == 100_000
    stats = sandbox.stats()
    assert (stats["requests_total"], stats["batches_received"], stats["credits_left"]) == (0, 0, 100_000)
    assert get_results(sandbox, request_id).json()["success"] is False


def test_the_same_seed_gives_the_same_request_ids_and_results(sandbox: SandboxServer) -> None:
    """After a reset, the same submissions get the same ids and the same enrichment."""
    first_id = post_batch(sandbox, {"data": BATCH}).json()["request_id"]
    first = wait_for_results(sandbox, first_id)
    sandbox.reset()
    second_id = post_batch(sandbox, {"data": BATCH}).json()["request_id"]
    assert second_id == first_id
    assert wait_for_results(sandbox, second_id)["data"] == first["data"]


def test_control_requests_are_not_counted_as_api_traffic(sandbox: SandboxServer) -> None:
    """Reading stats or changing knobs leaves the request counters alone."""
    for _ in range(3):
        requests.get(f"{sandbox.url}/_sandbox/stats", timeout=5)
    requests.post(f"{sandbox.url}/_sandbox/config", json={}, timeout=5)
    assert sandbox.stats()["requests_total"] == 0


@pytest.mark.parametrize("headers", [{}, {CONTROL_KEY_HEADER: "guessed"}])
def test_knobs_do_not_change_over_http_without_the_control_key(sandbox: SandboxServer, headers: dict[str, str]) -> None:
    """A stranger's POST {"api_key": "other"} would lock every client out: without the key it is a 403."""
    for path in ("/_sandbox/config", "/_sandbox/reset"):
        answer = requests.post(f"{sandbox.url}{path}", json={"api_key": "other"}, headers=headers, timeout=5)
        assert answer.status_code == 403
    assert post_batch(sandbox, {"data": [{}]}).status_code == 200, "the API key is unchanged"


def test_the_control_key_never_changes_or_shows_over_http_and_big_bodies_are_not_read(sandbox: SandboxServer) -> None:
    """The key is set where the sandbox starts; a 1 MB control body is refused (413) before it is read whole."""
    changed = requests.post(f"{sandbox.url}/_sandbox/config", json={"control_key": "x"}, headers=KEY, timeout=5)
    assert changed.status_code == 400
    assert "control_key" not in requests.get(f"{sandbox.url}/_sandbox/config", timeout=5).json()
    big = requests.post(f"{sandbox.url}/_sandbox/config", data=b"{" + b" " * 2**20, headers=KEY, timeout=5)
    assert big.status_code == 413


def test_without_a_control_key_the_sandbox_takes_no_change_over_http() -> None:
    """The default: a sandbox started without --control-key answers every change with 403 and says why."""
    with SandboxServer(SandboxConfig(host="127.0.0.1", port=0)) as server:
        answer = requests.post(f"{server.url}/_sandbox/config", json={"credits": 1}, headers=KEY, timeout=5)
        assert answer.status_code == 403 and "--control-key" in answer.json()["detail"]


def test_a_connection_whose_request_head_never_ends_is_closed(sandbox: SandboxServer) -> None:
    """Slowloris: a head sent a piece at a time, never finished, is cut after HEAD_TIMEOUT_S (the receiver too)."""
    host, port = sandbox.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=HEAD_TIMEOUT_S + 5) as conn:
        conn.sendall(b"POST /v1/enrich/all HTTP/1.1\r\nHost: sandbox\r\n")
        started = time.monotonic()
        assert conn.recv(1024) == b"", "the server closes the connection"
        assert HEAD_TIMEOUT_S - 1 < time.monotonic() - started < HEAD_TIMEOUT_S + 4
