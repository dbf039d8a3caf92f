"""Choosing a request's fault: the header's tokens and the seeded probabilities."""

from __future__ import annotations

import random

import pytest

from dropq.dropcontact.sandbox.config import SandboxConfig
from dropq.dropcontact.sandbox.faults import NO_FAULT, Fault, FaultHeaderError, choose_fault, parse_fault_header


@pytest.mark.parametrize(
    ("header", "fault"),
    [
        ("503", Fault(status=503)),
        ("429", Fault(status=429)),
        ("drop", Fault(drop=True)),
        ("lost-response", Fault(lose_response=True)),
        ("slow", Fault(delay_s=2.0)),
        ("slow=0.25, 524", Fault(status=524, delay_s=0.25)),
        ("webhook-lost", Fault(webhook="lost")),
        ("Webhook-Duplicate", Fault(webhook="duplicate")),
        ("", NO_FAULT),
    ],
)
def test_the_fault_header_reads_each_token(header: str, fault: Fault) -> None:
    """Each row: a header value and the fault it forces."""
    assert parse_fault_header(header, default_slow_s=2.0) == fault


@pytest.mark.parametrize("header", ["418", "explode", "slow=soon"])
def test_an_unknown_fault_token_is_refused(header: str) -> None:
    """Unknown statuses, words and durations raise rather than pass silently."""
    with pytest.raises(FaultHeaderError):
        parse_fault_header(header, default_slow_s=2.0)


def test_no_probability_means_no_fault_and_no_draw() -> None:
    """With every probability at 0, nothing happens and the generator is untouched (ids stay reproducible)."""
    rng = random.Random(1)
    state = rng.getstate()
    assert choose_fault(SandboxConfig(), rng, is_storming=False) is NO_FAULT
    assert rng.getstate() == state


def test_a_timed_storm_forces_429() -> None:
    """While a storm is on, every request gets 429."""
    assert choose_fault(SandboxConfig(), random.Random(1), is_storming=True).status == 429


def test_probabilities_of_one_always_fire_with_the_configured_statuses() -> None:
    """error_probability 1 draws from error_statuses only."""
    config = SandboxConfig(error_probability=1.0, error_statuses=(503, 504))
    rng = random.Random(7)
    assert {choose_fault(config, rng, is_storming=False).status for _ in range(50)} == {503, 504}
