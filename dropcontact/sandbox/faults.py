"""Fault injection: which failure, if any, a request gets.

A fault is chosen either explicitly, for one request, with the header
``X-Sandbox-Fault`` (comma-separated tokens), or at random from the
configured probabilities with the sandbox's seeded generator. Tests use the
header or set a probability for their own scenario; nothing is random by default.

Tokens: ``500``, ``503``, ``504``, ``524`` (answer that status), ``429`` (a
storm answer), ``drop`` (close the connection without answering, nothing
handled), ``lost-response`` (handle the request, then close the connection
without answering: a POST is charged but its answer is lost), ``slow`` or
``slow=<seconds>`` (hold the answer), ``webhook-lost`` and ``webhook-duplicate``
(this batch's webhook push is lost or sent twice).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from dropq.dropcontact.sandbox.config import FAULT_STATUSES, SandboxConfig
from dropq.errors import SandboxRequestError

__all__ = ["FAULT_HEADER", "Fault", "NO_FAULT", "FaultHeaderError", "parse_fault_header", "choose_fault"]

FAULT_HEADER = "X-Sandbox-Fault"
_WEBHOOK_TOKENS = {"webhook-lost": "lost", "webhook-duplicate": "duplicate"}


class FaultHeaderError(SandboxRequestError):
    """The fault header holds a token the sandbox does not know."""


@dataclass(frozen=True, slots=True)
class Fault:
    """What goes wrong with one request; the default is nothing."""

    status: int | None = None
    drop: bool = False
    lose_response: bool = False
    delay_s: float = 0.0
    webhook: str | None = None

    @property
    def is_storm(self) -> bool:
        """Tell whether the request is answered 429 by a storm rather than by the rate limit."""
        return self.status == 429


NO_FAULT = Fault()


def parse_fault_header(raw: str, default_slow_s: float) -> Fault:
    """Read the ``X-Sandbox-Fault`` header.

    Raises:
        FaultHeaderError: a token is unknown.
    """
    fault = NO_FAULT
    for word in (part.strip().lower() for part in raw.split(",")):
        if not word:
            continue
        if word.isdigit() and (int(word) in FAULT_STATUSES or int(word) == 429):
            fault = replace(fault, status=int(word))
        elif word == "drop":
            fault = replace(fault, drop=True)
        elif word == "lost-response":
            fault = replace(fault, lose_response=True)
        elif word == "slow" or word.startswith("slow="):
            seconds = word.partition("=")[2]
            try:
                delay_s = float(seconds) if seconds else default_slow_s
            except ValueError:
                raise FaultHeaderError(f"{FAULT_HEADER} slow needs seconds, got {word!r}") from None
            fault = replace(fault, delay_s=delay_s)
        elif word in _WEBHOOK_TOKENS:
            fault = replace(fault, webhook=_WEBHOOK_TOKENS[word])
        else:
            raise FaultHeaderError(f"unknown {FAULT_HEADER} token {word!r}")
    return fault


def choose_fault(config: SandboxConfig, rng: random.Random, *, is_storming: bool) -> Fault:
    """Draw a fault from the configured probabilities; a probability of 0 draws nothing from ``rng``.

    Args:
        config: the probabilities.
        rng: the sandbox's seeded generator.
        is_storming: a timed 429 storm is on.
    """
    status: int | None = None
    if is_storming or (config.storm_probability and rng.random() < config.storm_probability):
        status = 429
    elif config.error_probability and rng.random() < config.error_probability:
        status = rng.choice(config.error_statuses)
    drop = bool(config.drop_probability) and rng.random() < config.drop_probability
    lose = bool(config.lost_response_probability) and rng.random() < config.lost_response_probability
    slow = bool(config.slow_probability) and rng.random() < config.slow_probability
    if status is None and not (drop or lose or slow):
        return NO_FAULT
    return Fault(status=status, drop=drop, lose_response=lose, delay_s=config.slow_s if slow else 0.0)
