"""Typed settings read from the environment (12-factor).

Only this module reads the environment. ``from_env(mapping)`` builds a frozen
``Settings`` from any mapping, so tests pass a dict instead of patching
``os.environ``. A bad value raises ``SettingsError`` naming the variable, the
value and what is expected, and start-up stops there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

# Facts of the API (its URL, timings, client timeouts) are defined once, by the API package.
from dropq.dropcontact.backoff import (
    DEFAULT_POLL_BASE_S,
    DEFAULT_POLL_CAP_S,
    DEFAULT_POLL_FACTOR,
    DEFAULT_POLL_FIRST_S,
    DEFAULT_POLL_MAX_AGE_S,
)
from dropq.dropcontact.client import DEFAULT_BASE_URL as DEFAULT_API_URL
from dropq.dropcontact.client import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_READ_TIMEOUT_S
from dropq.errors import InvalidValueError

__all__ = [
    "Settings",
    "SettingsError",
    "from_env",
    "ENV_VARS",
    "SECRET_VARS",
    "FILE_SUFFIX",
    "DEFAULT_API_URL",
    "DEFAULT_KEY_PREFIX",
    "MISSING_API_KEY_REASON",
]

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
# The API allows 60 requests per second per account, POSTs and GETs together.
DEFAULT_RATE_LIMIT = 60.0
# The limiter issues this share of the limit, so that requests arriving up to ~26 ms apart from
# their grant order still keep every second at the server within the limit.
DEFAULT_RATE_MARGIN = 0.97
# The file that ships beside this module (jsonl and csv under out/), never a path relative to the
# current folder: there a user's own config/ package may have a file of that name.
DEFAULT_DESTINATIONS = str(Path(__file__).with_name("destinations.toml"))
# Finished jobs' ledgers and bulk data stay this long in Redis (results are kept 30 days by the API).
DEFAULT_JOB_TTL_S = 7 * 24 * 3600
# Retries allowed for real errors (5xx, timeouts) per task; waiting never uses them.
DEFAULT_MAX_RETRIES = 8
# How often a paused (out of credits) key re-checks its balance with the free endpoint.
DEFAULT_CREDIT_RECHECK_S = 60.0
# Redis broker: an unacknowledged message (a killed worker's, or a countdown's) comes back after this.
# Long enough for the longest countdown; shorter means faster recovery from a killed worker.
DEFAULT_VISIBILITY_TIMEOUT_S = 3600
# A step of a job (a submit, a poll, a delivery, a finish) overdue by this long counts as lost with
# its worker, and the sweep sends it again: recovery in about this time, whatever the visibility timeout.
DEFAULT_STALL_TIMEOUT_S = 60.0
# With webhooks, polling is only the safety net for lost pushes: the first look waits out
# the API's documented worst case (3 minutes).
DEFAULT_WEBHOOK_SAFETY_POLL_S = 180.0
# A push is one request's results: 250 records, each well under 16 kB once enriched.
DEFAULT_WEBHOOK_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_WEBHOOK_HOST = "0.0.0.0"
# A batch that is not full waits this long at most for other jobs' batches to share its POST: a CRM's
# calls of one or two contacts cost a request per 250 records, not per call, for a second of latency.
DEFAULT_COALESCE_LINGER_S = 1.0
# A result cached from the API answers the same question for this long; not-found results for less
# (Dropcontact's own data changes, people change jobs: a month is the conservative side).
DEFAULT_CACHE_MAX_AGE_DAYS = 30.0
DEFAULT_CACHE_NOT_FOUND_MAX_AGE_DAYS = 7.0
# `dropq metrics` answers this machine only unless told otherwise (its numbers describe the business).
DEFAULT_METRICS_HOST = "127.0.0.1"
# Beside Flower's 5555 and the receiver's 8081.
DEFAULT_METRICS_PORT = 9750
# The namespace of a deployment's Redis keys and queues: two deployments on one Redis use two prefixes.
DEFAULT_KEY_PREFIX = "dropq"
# Why a worker with no API key fails its jobs at once, against the real API (which would refuse each request).
MISSING_API_KEY_REASON = (
    "DROPCONTACT_API_KEY is not set on the worker: nothing was sent to the API; set it to your access token "
    "(or DROPCONTACT_API_URL to a sandbox) and restart the workers"
)
# Contacts a deployment holds before dropq.enrich holds back new parts: about 300 bytes of Redis each
# at peak (bench/flow_control.py), so some 75 MB; 34 s of the API's full rate (7,275 contacts/s at 0.97).
DEFAULT_MAX_WAITING_CONTACTS = 250_000
_KEY_PREFIX = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
DEFAULT_WEBHOOK_PORT = 8081
# ``{VARIABLE}_FILE`` names a file holding a secret variable's value (Docker's and Kubernetes' secrets).
FILE_SUFFIX = "_FILE"
# A secret file is a few bytes; anything bigger is the wrong file.
_MAX_SECRET_FILE_BYTES = 64 * 1024


class SettingsError(InvalidValueError):
    """A variable of the environment holds a value dropq cannot use (``name`` is the variable)."""


def _finite_float(variable: str, raw: str, *, zero: bool) -> float:
    """A finite number above 0 (or from 0, with ``zero``); NaN and infinity are refused."""
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (value >= 0 if zero else value > 0) or value == float("inf"):
        raise SettingsError(variable, raw, "a number of 0 or more" if zero else "a positive number")
    return value


def _positive_float(variable: str, raw: str) -> float:
    return _finite_float(variable, raw, zero=False)


def _non_negative_float(variable: str, raw: str) -> float:
    return _finite_float(variable, raw, zero=True)


def _positive_int(variable: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value <= 0:
        raise SettingsError(variable, raw, "a positive integer")
    return value


def _growth_factor(variable: str, raw: str) -> float:
    value = _positive_float(variable, raw)
    # Below 1 the delays would shrink towards zero and a slow batch would be polled in a storm.
    if value < 1:
        raise SettingsError(variable, raw, "a number of 1 or more")
    return value


def _fraction(variable: str, raw: str) -> float:
    value = _positive_float(variable, raw) if raw.strip() else -1.0
    if value > 1:
        raise SettingsError(variable, raw, "a number above 0 and at most 1")
    return value


def _port(variable: str, raw: str) -> int:
    value = _positive_int(variable, raw) if raw != "0" else 0
    if value > 65535:
        raise SettingsError(variable, raw, "a port number between 0 and 65535")
    return value


def _url(schemes: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(variable: str, raw: str) -> str:
        scheme, sep, rest = raw.partition("://")
        if not sep or scheme not in schemes or not rest:
            raise SettingsError(variable, raw, "a URL starting with " + " or ".join(f"{s}://" for s in schemes))
        return raw.rstrip("/") if scheme.startswith("http") else raw

    return parse


# The words a yes/no variable accepts, as people and deployment tools write them.
_FLAG_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _flag(variable: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered not in _FLAG_WORDS:
        raise SettingsError(variable, raw, "one of " + ", ".join(sorted(_FLAG_WORDS)))
    return _FLAG_WORDS[lowered]


def _text(variable: str, raw: str) -> str:
    return raw


def _key_prefix(variable: str, raw: str) -> str:
    # No ":" (it separates a key's parts) nor "." (it separates a queue's): a prefix is one word.
    if not _KEY_PREFIX.fullmatch(raw):
        raise SettingsError(
            variable, raw, "1 to 32 lower-case letters, digits, - or _, starting with a letter or digit"
        )
    return raw


def _choice(*choices: str) -> Callable[[str, str], str]:
    def parse(variable: str, raw: str) -> str:
        if raw.lower() not in choices:
            raise SettingsError(variable, raw, "one of " + ", ".join(choices))
        return raw.lower()

    return parse


def _var(name: str, parse: Callable[[str, str], Any], default: Any, doc: str) -> Any:
    return field(default=default, metadata={"env": name, "parse": parse, "doc": doc})


def _secret(name: str, parse: Callable[[str, str], Any], default: Any, doc: str) -> Any:
    # Kept out of repr (a password may sit in a URL); also read from {name}_FILE.
    return field(default=default, repr=False, metadata={"env": name, "parse": parse, "doc": doc, "secret": True})


def _basic_auth(variable: str, raw: str) -> str:
    # Flower's format: user:password, several separated by commas.
    if not all(user and password for user, _, password in (pair.partition(":") for pair in raw.split(","))):
        raise SettingsError(variable, "[redacted]", "user:password pairs separated by commas")
    return raw


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything dropq reads from the environment, with working defaults.

    The API key is kept out of ``repr`` so it never reaches a log line or a traceback.
    """

    api_key: str | None = field(
        default=None,
        repr=False,
        metadata={"env": "DROPCONTACT_API_KEY", "parse": _text, "doc": "the access token", "secret": True},
    )
    digest_secret: str | None = field(
        default=None,
        repr=False,
        metadata={
            "env": "DROPQ_DIGEST_SECRET",
            "parse": _text,
            "doc": "key of the de-duplication digests (default: derived from the API key)",
            "secret": True,
        },
    )
    api_url: str = _var("DROPCONTACT_API_URL", _url(("http", "https")), DEFAULT_API_URL, "base URL of the API")
    redis_url: str = _secret("REDIS_URL", _url(("redis", "rediss", "unix")), DEFAULT_REDIS_URL, "Redis for state")
    broker_url: str = _secret("CELERY_BROKER_URL", _url(("redis", "rediss", "amqp", "amqps")), "", "Celery broker")
    redis_password: str | None = _secret(
        "REDIS_PASSWORD", _text, None, "Redis's requirepass, added to REDIS_URL and a Redis CELERY_BROKER_URL"
    )
    flower_basic_auth: str | None = _secret(
        "FLOWER_BASIC_AUTH", _basic_auth, None, "user:password pairs that `dropq flower` asks for"
    )
    rate_limit: float = _var("DROPQ_RATE_LIMIT", _positive_float, DEFAULT_RATE_LIMIT, "requests/s, all workers")
    rate_margin: float = _var("DROPQ_RATE_MARGIN", _fraction, DEFAULT_RATE_MARGIN, "share of the limit issued")
    destinations_path: str = _var("DROPQ_DESTINATIONS", _text, DEFAULT_DESTINATIONS, "destination config file")
    webhook_url: str | None = _var("DROPQ_WEBHOOK_URL", _url(("http", "https")), None, "public receiver URL")
    webhook_safety_poll_s: float = _var(
        "DROPQ_WEBHOOK_SAFETY_POLL_S", _positive_float, DEFAULT_WEBHOOK_SAFETY_POLL_S, "first poll with webhooks"
    )
    webhook_host: str = _var("DROPQ_WEBHOOK_HOST", _text, DEFAULT_WEBHOOK_HOST, "receiver bind address")
    webhook_port: int = _var("DROPQ_WEBHOOK_PORT", _port, DEFAULT_WEBHOOK_PORT, "receiver port")
    metrics_host: str = _var("DROPQ_METRICS_HOST", _text, DEFAULT_METRICS_HOST, "`dropq metrics` bind address")
    metrics_port: int = _var("DROPQ_METRICS_PORT", _port, DEFAULT_METRICS_PORT, "`dropq metrics` port")
    webhook_max_body_bytes: int = _var(
        "DROPQ_WEBHOOK_MAX_BODY_BYTES", _positive_int, DEFAULT_WEBHOOK_MAX_BODY_BYTES, "largest push body read"
    )
    poll_first_s: float = _var("DROPQ_POLL_FIRST_S", _positive_float, DEFAULT_POLL_FIRST_S, "first poll delay")
    poll_base_s: float = _var("DROPQ_POLL_BASE_S", _positive_float, DEFAULT_POLL_BASE_S, "poll backoff base")
    poll_factor: float = _var("DROPQ_POLL_FACTOR", _growth_factor, DEFAULT_POLL_FACTOR, "poll backoff growth")
    poll_cap_s: float = _var("DROPQ_POLL_CAP_S", _positive_float, DEFAULT_POLL_CAP_S, "poll backoff cap")
    coalesce_linger_s: float = _var(
        "DROPQ_COALESCE_LINGER_S", _non_negative_float, DEFAULT_COALESCE_LINGER_S, "wait to share a POST (0: off)"
    )
    poll_early: bool = _var("DROPQ_POLL_EARLY", _flag, True, "poll ahead of the schedule while the budget has room")
    poll_max_age_s: float = _var("DROPQ_POLL_MAX_AGE_S", _positive_float, DEFAULT_POLL_MAX_AGE_S, "forceResults age")
    connect_timeout_s: float = _var(
        "DROPQ_CONNECT_TIMEOUT_S", _positive_float, DEFAULT_CONNECT_TIMEOUT_S, "HTTP connect timeout"
    )
    read_timeout_s: float = _var("DROPQ_READ_TIMEOUT_S", _positive_float, DEFAULT_READ_TIMEOUT_S, "HTTP read timeout")
    max_retries: int = _var("DROPQ_MAX_RETRIES", _positive_int, DEFAULT_MAX_RETRIES, "retries for real errors")
    credit_budget_per_day: int | None = _var("DROPQ_CREDIT_BUDGET_PER_DAY", _positive_int, None, "daily budget")
    credit_recheck_s: float = _var(
        "DROPQ_CREDIT_RECHECK_S", _positive_float, DEFAULT_CREDIT_RECHECK_S, "balance re-check when paused"
    )
    visibility_timeout_s: int = _var(
        "DROPQ_VISIBILITY_TIMEOUT_S", _positive_int, DEFAULT_VISIBILITY_TIMEOUT_S, "broker redelivery timeout"
    )
    stall_timeout_s: float = _var(
        "DROPQ_STALL_TIMEOUT_S", _positive_float, DEFAULT_STALL_TIMEOUT_S, "overdue step re-sent after"
    )
    job_ttl_s: int = _var("DROPQ_JOB_TTL_S", _positive_int, DEFAULT_JOB_TTL_S, "how long finished jobs stay")
    key_prefix: str = _var(
        "DROPQ_KEY_PREFIX", _key_prefix, DEFAULT_KEY_PREFIX, "namespace of this deployment's keys and queues"
    )
    max_waiting_contacts: int = _var(
        "DROPQ_MAX_WAITING_CONTACTS",
        _positive_int,
        DEFAULT_MAX_WAITING_CONTACTS,
        "contacts in flight before dropq.enrich holds new parts",
    )
    cache_url: str | None = field(
        default=None,
        repr=False,
        metadata={
            "env": "DROPQ_CACHE_URL",
            "parse": _url(("postgresql", "postgres", "redis", "rediss")),
            "doc": "result cache store; none: no cache",
        },
    )
    cache_max_age_days: float = _var(
        "DROPQ_CACHE_MAX_AGE_DAYS", _positive_float, DEFAULT_CACHE_MAX_AGE_DAYS, "age of a cached result it answers"
    )
    cache_not_found_max_age_days: float = _var(
        "DROPQ_CACHE_NOT_FOUND_MAX_AGE_DAYS",
        _positive_float,
        DEFAULT_CACHE_NOT_FOUND_MAX_AGE_DAYS,
        "the same, for not_found results",
    )
    consume_default_queue: bool = _var(
        "DROPQ_CONSUME_DEFAULT_QUEUE", _flag, False, "consume Celery's default queue (a broker for dropq alone)"
    )
    task_events: bool = _var(
        "DROPQ_TASK_EVENTS", _flag, False, "send task events always (Flower turns them on while it runs anyway)"
    )
    log_level: str = _var("DROPQ_LOG_LEVEL", _choice("debug", "info", "warning", "error"), "info", "log level")
    log_format: str = _var("DROPQ_LOG_FORMAT", _choice("auto", "json", "console"), "auto", "log renderer")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value these settings hold (for the log scrubber): keys, passwords, auth pairs."""
        values = [self.api_key, self.digest_secret, self.redis_password]
        for url in (self.redis_url, self.broker_url):
            password = _URL_PASSWORD.search(url)
            values.append(password.group(1) if password else None)
        for pair in (self.flower_basic_auth or "").split(","):
            values.append(pair.partition(":")[2] or None)
        return tuple(dict.fromkeys(v for v in values if v))

    @property
    def effective_broker_url(self) -> str:
        """The broker: ``CELERY_BROKER_URL`` when set, else ``REDIS_URL``."""
        return self.broker_url or self.redis_url

    @property
    def is_missing_api_key(self) -> bool:
        """Whether no API key is set while the URL is the real API's (which would refuse every request)."""
        return not self.api_key and self.api_url == DEFAULT_API_URL

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)


ENV_VARS: tuple[tuple[str, str, str], ...] = tuple(
    (f.metadata["env"], f.name, f.metadata["doc"]) for f in fields(Settings)
)
# The variables that may also be given as {name}_FILE.
SECRET_VARS: tuple[str, ...] = tuple(f.metadata["env"] for f in fields(Settings) if f.metadata.get("secret"))
# The password of a URL (scheme://user:password@host), for the scrubber.
_URL_PASSWORD = re.compile(r"://[^:/@]*:([^@/]+)@")


def _read_secret_file(variable: str, path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise SettingsError(variable, path, f"a readable file ({exc.strerror})") from exc
    if len(data) > _MAX_SECRET_FILE_BYTES:
        raise SettingsError(variable, path, f"a file of at most {_MAX_SECRET_FILE_BYTES} bytes")
    try:
        # One trailing newline is what `echo secret > file` leaves; it is not part of the secret.
        return data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise SettingsError(variable, path, "a UTF-8 text file") from exc


def _raw_value(env: Mapping[str, str], name: str, is_secret: bool) -> str:
    raw = env.get(name, "").strip()
    path = env.get(name + FILE_SUFFIX, "").strip() if is_secret else ""
    if raw and path:
        raise SettingsError(name + FILE_SUFFIX, path, f"unset while {name} is set (one or the other)")
    return _read_secret_file(name + FILE_SUFFIX, path) if path else raw


def _with_password(url: str, password: str) -> str:
    """A redis:// or rediss:// URL with the password added, unless it already has one."""
    scheme, sep, rest = url.partition("://")
    if scheme not in ("redis", "rediss") or not sep:
        return url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        return url
    return f"{scheme}://:{quote(password, safe='')}@{authority}{slash}{path}"


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from an environment mapping (``os.environ`` when none is given).

    Empty values count as unset. A secret variable may instead name a file in ``{VARIABLE}_FILE``
    (both at once is an error). ``REDIS_PASSWORD`` is added to ``REDIS_URL`` and to a Redis
    ``CELERY_BROKER_URL`` that hold none.

    Raises:
        SettingsError: a variable holds a value that cannot be used.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = _raw_value(env, f.metadata["env"], bool(f.metadata.get("secret")))
        if raw:
            values[f.name] = f.metadata["parse"](f.metadata["env"], raw)
    password = values.get("redis_password")
    if password:
        for name in ("redis_url", "broker_url"):
            url = values.get(name, DEFAULT_REDIS_URL if name == "redis_url" else "")
            if url:
                values[name] = _with_password(url, password)
    return Settings(**values)
