"""Every knob of the sandbox, as one frozen value.

``SandboxConfig`` lists the knobs with their defaults; each one is also an
environment variable ``DROPQ_SANDBOX_<NAME>`` and a ``dropq sandbox`` option
``--<name>``. ``from_env(mapping)`` reads the variables from any mapping (the CLI
passes ``os.environ``, tests pass a dict) and ``replace(**changes)`` applies
changes from the CLI or the control endpoint, with the same parsing and checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from dropq.errors import InvalidValueError

__all__ = ["SandboxConfig", "SandboxConfigError", "ENV_PREFIX", "FAULT_STATUSES", "env_name"]

ENV_PREFIX = "DROPQ_SANDBOX_"
# The transient answers the real API (and the CDN in front of it) is documented to give.
FAULT_STATUSES = (500, 503, 504, 524)

DEFAULT_HOST = "127.0.0.1"
# Beside the webhook receiver's 8081, out of the way of common development servers.
DEFAULT_PORT = 8090
# The one key the sandbox accepts, unless told otherwise.
DEFAULT_API_KEY = "sandbox"
DEFAULT_SEED = 0
# The API allows 60 requests per second per account, POSTs and GETs together.
DEFAULT_RATE_LIMIT = 60
DEFAULT_RATE_WINDOW_S = 1.0
# A comfortable balance for demos; tests lower it to see the 403.
DEFAULT_CREDITS = 100_000
# The real API takes about 10 to 60 s per batch (up to 3 min); tests set this small.
DEFAULT_PROCESSING_MIN_S = 10.0
DEFAULT_PROCESSING_MAX_S = 60.0
# Results are kept 30 days.
DEFAULT_RETENTION_S = 30 * 24 * 3600.0
# Results of at most this many batches are kept (about 0.1 MB each at 250 records): a sandbox left
# running for days stays within a few hundred MB; older ones answer like expired ones.
DEFAULT_MAX_KEPT_BATCHES = 5_000
# Share of enrichments that find no email (refunded); about what real B2B lists give.
DEFAULT_NO_EMAIL_PROBABILITY = 0.2
# Share of records that come back with phone numbers.
DEFAULT_PHONE_PROBABILITY = 0.3
# How long a "slow answer" fault holds the response.
DEFAULT_SLOW_S = 2.0
# Webhook pushes wait this long for the receiver (connect and read each).
DEFAULT_WEBHOOK_TIMEOUT_S = 5.0


class SandboxConfigError(InvalidValueError):
    """A knob was given a value the sandbox cannot use."""


def _parse_int(name: str, raw: object) -> int:
    if isinstance(raw, bool):
        raise SandboxConfigError(name, raw, "an integer")
    try:
        return int(str(raw).strip()) if isinstance(raw, str) else int(raw)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        raise SandboxConfigError(name, raw, "an integer") from None


def _parse_float(name: str, raw: object) -> float:
    if isinstance(raw, bool):
        raise SandboxConfigError(name, raw, "a number")
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SandboxConfigError(name, raw, "a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise SandboxConfigError(name, raw, "a finite number")
    return value


def _parse_text(name: str, raw: object) -> str:
    if not isinstance(raw, str):
        raise SandboxConfigError(name, raw, "a string")
    return raw


def _parse_statuses(name: str, raw: object) -> tuple[int, ...]:
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        raise SandboxConfigError(name, raw, "a list of status codes")
    statuses = tuple(_parse_int(name, item) for item in items if str(item).strip())
    if not statuses or any(status not in FAULT_STATUSES for status in statuses):
        raise SandboxConfigError(name, raw, "a non-empty list taken from " + ", ".join(map(str, FAULT_STATUSES)))
    return statuses


def _knob(default: Any, parse: Callable[[str, object], Any], doc: str, **kwargs: Any) -> Any:
    return field(default=default, metadata={"parse": parse, "doc": doc}, **kwargs)


# Knobs never shown by the control plane (and the control key never changed through it).
SECRET_KNOBS = ("api_key", "control_key")


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """The sandbox's knobs; the defaults behave like the real API with no faults.

    The API key is kept out of ``repr``, so it never reaches a log line or the stats.
    """

    host: str = _knob(DEFAULT_HOST, _parse_text, "address to bind")
    port: int = _knob(DEFAULT_PORT, _parse_int, "port to bind (0 picks a free one)")
    api_key: str = _knob(DEFAULT_API_KEY, _parse_text, "the only X-Access-Token accepted", repr=False)
    control_key: str = _knob(
        "",
        _parse_text,
        "key for changing knobs over HTTP (X-Sandbox-Control-Key); empty: no change over HTTP",
        repr=False,
    )
    seed: int = _knob(DEFAULT_SEED, _parse_int, "seed of every random choice (reproducible runs)")
    rate_limit: int = _knob(DEFAULT_RATE_LIMIT, _parse_int, "accepted requests allowed per rate window")
    rate_window_s: float = _knob(DEFAULT_RATE_WINDOW_S, _parse_float, "length of the sliding rate window")
    credits: int = _knob(DEFAULT_CREDITS, _parse_int, "credit balance (setting it live sets the balance)")
    processing_min_s: float = _knob(DEFAULT_PROCESSING_MIN_S, _parse_float, "shortest processing time of a batch")
    processing_max_s: float = _knob(DEFAULT_PROCESSING_MAX_S, _parse_float, "longest processing time of a batch")
    retention_s: float = _knob(DEFAULT_RETENTION_S, _parse_float, "how long results can be fetched")
    max_kept_batches: int = _knob(DEFAULT_MAX_KEPT_BATCHES, _parse_int, "batches whose results are kept, the newest")
    no_email_probability: float = _knob(DEFAULT_NO_EMAIL_PROBABILITY, _parse_float, "share of records with no email")
    phone_probability: float = _knob(DEFAULT_PHONE_PROBABILITY, _parse_float, "share of records given phones")
    error_probability: float = _knob(0.0, _parse_float, "probability of a 5xx/524 answer")
    error_statuses: tuple[int, ...] = _knob(FAULT_STATUSES, _parse_statuses, "statuses drawn for error faults")
    storm_probability: float = _knob(0.0, _parse_float, "probability of a 429 on any request")
    storm_s: float = _knob(0.0, _parse_float, "every request gets 429 for this long from start or change")
    answer_delay_s: float = _knob(0.0, _parse_float, "every API answer is held this long (a remote API's latency)")
    slow_probability: float = _knob(0.0, _parse_float, "probability of a slow answer")
    slow_s: float = _knob(DEFAULT_SLOW_S, _parse_float, "how long a slow answer is held")
    drop_probability: float = _knob(0.0, _parse_float, "probability of dropping the connection unanswered")
    lost_response_probability: float = _knob(0.0, _parse_float, "probability of handling then dropping the answer")
    webhook_loss_probability: float = _knob(0.0, _parse_float, "probability a webhook push is lost")
    webhook_duplicate_probability: float = _knob(0.0, _parse_float, "probability a webhook push is sent twice")
    webhook_timeout_s: float = _knob(DEFAULT_WEBHOOK_TIMEOUT_S, _parse_float, "connect and read timeout of pushes")

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name.endswith("_probability") and not 0.0 <= value <= 1.0:
                raise SandboxConfigError(item.name, value, "a probability between 0 and 1")
            if item.name.endswith("_s") and value < 0:
                raise SandboxConfigError(item.name, value, "a duration of 0 s or more")
        if not 0 <= self.port <= 65535:
            raise SandboxConfigError("port", self.port, "a port number between 0 and 65535")
        if self.rate_limit < 1:
            raise SandboxConfigError("rate_limit", self.rate_limit, "at least 1")
        if self.rate_window_s <= 0:
            raise SandboxConfigError("rate_window_s", self.rate_window_s, "a positive duration")
        if self.credits < 0:
            raise SandboxConfigError("credits", self.credits, "0 or more")
        if self.processing_max_s < self.processing_min_s:
            raise SandboxConfigError("processing_max_s", self.processing_max_s, "at least processing_min_s")
        if not self.api_key:
            raise SandboxConfigError("api_key", "", "a non-empty key")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SandboxConfig:
        """Build a config from ``DROPQ_SANDBOX_*`` variables of a mapping; empty values count as unset.

        Raises:
            SandboxConfigError: a variable holds a value that cannot be used.
        """
        changes = {}
        for item in fields(cls):
            raw = environ.get(env_name(item.name), "").strip()
            if raw:
                changes[item.name] = raw
        return cls().replace(**changes)

    def replace(self, **changes: object) -> SandboxConfig:
        """Return a copy with some knobs changed, each parsed and checked (strings are accepted too).

        Raises:
            SandboxConfigError: an unknown knob, or a value that cannot be used.
        """
        known = {item.name: item for item in fields(self)}
        values = {name: getattr(self, name) for name in known}
        for name, raw in changes.items():
            if name not in known:
                raise SandboxConfigError(name, raw, "a known knob (" + ", ".join(known) + ")")
            values[name] = known[name].metadata["parse"](name, raw)
        return SandboxConfig(**values)

    def to_public_dict(self) -> dict[str, object]:
        """Every knob but the keys, as JSON-ready values."""
        return {
            item.name: list(value) if isinstance(value := getattr(self, item.name), tuple) else value
            for item in fields(self)
            if item.name not in SECRET_KNOBS
        }

    @staticmethod
    def knobs() -> tuple[tuple[str, str, object, str], ...]:
        """Each knob as ``(name, environment variable, default, description)``, for ``--help``."""
        return tuple(
            (item.name, env_name(item.name), item.default, item.metadata["doc"]) for item in fields(SandboxConfig)
        )


def env_name(knob: str) -> str:
    """The environment variable of a knob: ``DROPQ_SANDBOX_`` and the knob's name in capitals."""
    return ENV_PREFIX + knob.upper()
