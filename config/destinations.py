"""The destination config file (TOML), named by ``DROPQ_DESTINATIONS``.

Example::

    default = ["jsonl"]          # destinations of a job that names none

    [destinations.jsonl]
    type = "jsonl"
    directory = "out"

    [destinations.crm-csv]
    type = "csv"
    directory = "/data/exports"

    [destinations.pg]
    type = "postgres"
    dsn_env = "DROPQ_PG_DSN"     # or dsn = "postgresql://..."; exactly one of them
    table = "crm.dropq_outcomes"

    [destinations.crm]
    type = "http"
    url = "https://crm.example.com/dropq"
    headers_env = { Authorization = "CRM_TOKEN" }   # header name -> environment variable

Types: ``jsonl``, ``csv``, ``stream`` (a Redis stream per job), ``postgres``
(a table, one row per record) and ``http`` (a POST per unit). ``stream`` and
the job's Celery ``callback`` exist without a line in the file. A missing file
means the built-in default: one ``jsonl`` destination writing under ``out/``.

Secrets named by ``dsn_env`` and ``headers_env`` are read from the environment
at load and kept in ``DestinationConfig.secrets``, which ``repr`` never shows.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dropq.errors import DropqError

__all__ = ["DestinationConfig", "DestinationsConfig", "DestinationConfigError", "load_destinations", "TYPES"]

TYPES = ("jsonl", "csv", "stream", "postgres", "http")
# Used when the config file does not exist.
DEFAULT_DIRECTORY = "out"
# The postgres destination's table when the entry names none.
DEFAULT_TABLE = "dropq_outcomes"
# The http destination's connect and read timeout when the entry gives none.
DEFAULT_HTTP_TIMEOUT_S = 10.0
# A plain SQL identifier, optionally schema-qualified; PostgreSQL truncates names past 63 bytes.
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?")
# An HTTP header name (RFC 9110 token).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Options each new type accepts; anything else is a typo worth failing on.
_OPTIONS = {
    "postgres": frozenset({"dsn", "dsn_env", "table"}),
    "http": frozenset({"url", "headers", "headers_env", "timeout_s"}),
}
# What to install when a postgres destination is configured without psycopg.
POSTGRES_EXTRA_HINT = "pip install 'dropq[postgres]'"


class DestinationConfigError(DropqError, ValueError):
    """The destination file cannot be used; the message names the file, the entry and the rule."""


@dataclass(frozen=True, slots=True)
class DestinationConfig:
    """One named destination."""

    name: str
    type: str
    options: dict[str, Any] = field(default_factory=dict)
    # postgres: {"dsn": ...}; http: header name -> value read from the environment. Never shown by repr.
    secrets: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class DestinationsConfig:
    """All named destinations and the default selection."""

    destinations: dict[str, DestinationConfig]
    default: tuple[str, ...]


_BUILTIN = DestinationsConfig(
    destinations={
        "jsonl": DestinationConfig("jsonl", "jsonl", {"directory": DEFAULT_DIRECTORY}),
        "csv": DestinationConfig("csv", "csv", {"directory": DEFAULT_DIRECTORY}),
        "stream": DestinationConfig("stream", "stream"),
    },
    default=("jsonl",),
)


def load_destinations(path: str | Path, environ: Mapping[str, str] | None = None) -> DestinationsConfig:
    """Read the destination file; the built-in default when it does not exist.

    Args:
        path: the TOML file.
        environ: where ``dsn_env`` and ``headers_env`` are looked up (``os.environ`` when None).

    Raises:
        DestinationConfigError: the file is not valid TOML or an entry breaks a rule.
    """
    file = Path(path)
    if not file.exists():
        return _BUILTIN
    try:
        raw = tomllib.loads(file.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DestinationConfigError(f"{file}: not valid TOML: {exc}") from exc
    entries = raw.get("destinations", {})
    if not isinstance(entries, dict):
        raise DestinationConfigError(f"{file}: [destinations] must be a table")
    destinations = {"stream": _BUILTIN.destinations["stream"]}
    for name, entry in entries.items():
        if not isinstance(entry, dict) or entry.get("type") not in TYPES:
            got = entry.get("type") if isinstance(entry, dict) else entry
            raise DestinationConfigError(
                f"{file}: destinations.{name}.type must be one of {', '.join(TYPES)}, got {got!r}"
            )
        options = {k: v for k, v in entry.items() if k != "type"}
        if entry["type"] in ("jsonl", "csv") and not isinstance(options.get("directory", DEFAULT_DIRECTORY), str):
            raise DestinationConfigError(f"{file}: destinations.{name}.directory must be a string")
        if entry["type"] == "csv" and not isinstance(options.get("escape_formulas", True), bool):
            raise DestinationConfigError(f"{file}: destinations.{name}.escape_formulas must be true or false")
        env = os.environ if environ is None else environ
        if entry["type"] == "postgres":
            destinations[name] = _postgres_entry(f"{file}: destinations.{name}", name, options, env)
        elif entry["type"] == "http":
            destinations[name] = _http_entry(f"{file}: destinations.{name}", name, options, env)
        else:
            destinations[name] = DestinationConfig(name, entry["type"], options)
    default = raw.get("default", [n for n in destinations if n != "stream"][:1])
    if not isinstance(default, list) or any(name not in destinations for name in default):
        raise DestinationConfigError(f"{file}: default must list names of [destinations.*], got {default!r}")
    return DestinationsConfig(destinations=destinations, default=tuple(default))


def _check_known_options(where: str, kind: str, options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - _OPTIONS[kind])
    if unknown:
        raise DestinationConfigError(
            f"{where}: unknown option {unknown[0]!r} for type {kind!r} (known: {', '.join(sorted(_OPTIONS[kind]))})"
        )


def _env_value(where: str, option: str, variable: object, environ: Mapping[str, str]) -> str:
    """The value of the environment variable an option names; the message never shows the value."""
    if not isinstance(variable, str) or not variable:
        raise DestinationConfigError(f"{where}.{option} must name an environment variable, got {variable!r}")
    value = environ.get(variable, "")
    if not value:
        raise DestinationConfigError(f"{where}.{option}: environment variable {variable} is not set or empty")
    return value


def _postgres_entry(where: str, name: str, options: dict[str, Any], environ: Mapping[str, str]) -> DestinationConfig:
    _check_known_options(where, "postgres", options)
    if importlib.util.find_spec("psycopg") is None:
        raise DestinationConfigError(
            f"{where}: type 'postgres' needs psycopg, which is not installed: {POSTGRES_EXTRA_HINT}"
        )
    if ("dsn" in options) == ("dsn_env" in options):
        raise DestinationConfigError(f"{where}: give exactly one of dsn and dsn_env")
    if "dsn" in options:
        dsn = options.pop("dsn")
        if not isinstance(dsn, str) or not dsn:
            # The value may hold a password: say what is wrong without showing it.
            raise DestinationConfigError(f"{where}.dsn must be a non-empty string, got a {type(dsn).__name__}")
    else:
        dsn = _env_value(where, "dsn_env", options["dsn_env"], environ)
    table = options.setdefault("table", DEFAULT_TABLE)
    if not isinstance(table, str) or not _TABLE_NAME.fullmatch(table):
        raise DestinationConfigError(
            f"{where}.table must be a plain SQL identifier, optionally schema-qualified (schema.table), got {table!r}"
        )
    return DestinationConfig(name, "postgres", options, secrets={"dsn": dsn})


def _http_entry(where: str, name: str, options: dict[str, Any], environ: Mapping[str, str]) -> DestinationConfig:
    _check_known_options(where, "http", options)
    url = options.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        # Only the scheme and host are shown: the rest of a URL may carry credentials.
        got = f"scheme {parts.scheme!r}, host {parts.hostname!r}" if parts is not None else repr(url)
        raise DestinationConfigError(f"{where}.url must be an http:// or https:// URL with a host, got {got}")
    headers = options.setdefault("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise DestinationConfigError(f"{where}.headers must be a table of strings")
    headers_env = options.setdefault("headers_env", {})
    if not isinstance(headers_env, dict):
        raise DestinationConfigError(f"{where}.headers_env must be a table: header name = environment variable")
    for header in (*headers, *headers_env):
        if not _HEADER_NAME.fullmatch(header):
            raise DestinationConfigError(f"{where}: {header!r} is not a valid HTTP header name")
    both = sorted({h.lower() for h in headers} & {h.lower() for h in headers_env})
    if both:
        raise DestinationConfigError(f"{where}: header {both[0]!r} is in both headers and headers_env")
    secrets = {header: _env_value(where, f"headers_env.{header}", var, environ) for header, var in headers_env.items()}
    timeout_s = options.setdefault("timeout_s", DEFAULT_HTTP_TIMEOUT_S)
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or timeout_s <= 0:
        raise DestinationConfigError(f"{where}.timeout_s must be a positive number of seconds, got {timeout_s!r}")
    return DestinationConfig(name, "http", options, secrets=secrets)
