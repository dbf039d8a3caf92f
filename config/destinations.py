"""The destination config file (TOML), named by ``DROPQ_DESTINATIONS``.

Example::

    default = ["jsonl"]          # destinations of a job that names none

    [destinations.jsonl]
    type = "jsonl"
    directory = "out"

    [destinations.crm-csv]
    type = "csv"
    directory = "/data/exports"

Types: ``jsonl``, ``csv``, ``stream`` (a Redis stream per job). ``stream`` and
the job's Celery ``callback`` exist without a line in the file. A missing file
means the built-in default: one ``jsonl`` destination writing under ``out/``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DestinationConfig", "DestinationsConfig", "DestinationConfigError", "load_destinations", "TYPES"]

TYPES = ("jsonl", "csv", "stream")
# Used when the config file does not exist.
DEFAULT_DIRECTORY = "out"


class DestinationConfigError(ValueError):
    """The destination file cannot be used; the message names the file, the entry and the rule."""


@dataclass(frozen=True, slots=True)
class DestinationConfig:
    """One named destination."""

    name: str
    type: str
    options: dict[str, Any] = field(default_factory=dict)


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


def load_destinations(path: str | Path) -> DestinationsConfig:
    """Read the destination file; the built-in default when it does not exist.

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
        destinations[name] = DestinationConfig(name, entry["type"], options)
    default = raw.get("default", [n for n in destinations if n != "stream"][:1])
    if not isinstance(default, list) or any(name not in destinations for name in default):
        raise DestinationConfigError(f"{file}: default must list names of [destinations.*], got {default!r}")
    return DestinationsConfig(destinations=destinations, default=tuple(default))
