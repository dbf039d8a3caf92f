"""The options of a job, parsed from the JSON arguments of ``dropq.enrich`` (pure).

A bad option is refused before anything is stored, with a message naming the
argument and the value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from dropq.errors import InvalidValueError

__all__ = [
    "CACHE_MODES",
    "CallbackSpec",
    "JobOptions",
    "JobOptionsError",
    "MAX_INPUT_INDEX",
    "parse_job_options",
    "is_valid_job_id",
]

# A job holds at most this many input records: a part's offset plus its contacts stays at or below it.
# (Indexes travel through Lua, whose numbers are exact only up to 2**53, and into file names.)
MAX_INPUT_INDEX = 1_000_000_000

# Job ids end up in Redis keys and file names: keep them to a safe alphabet.
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# dropq's own task and queue names: a callback there would be consumed (and discarded) by dropq's workers.
_OWN_PREFIX = "dropq."
_LANGUAGES = ("fr", "en")
# The ``cache`` option (the result cache, when DROPQ_CACHE_URL names one): answer from it and keep new
# answers; ask the API again and keep its answers; leave the cache alone.
CACHE_MODES = ("use", "refresh", "off")
# The ``priority`` option: an interactive job's requests are served before a bulk job's (the limiter's
# lanes); "auto" is decided when the job opens: interactive when its first call is its whole input and
# fits one batch (a CRM's single contacts), bulk otherwise (a backfill).
PRIORITIES = ("auto", "interactive", "bulk")


class JobOptionsError(InvalidValueError):
    """An argument of ``dropq.enrich`` is not usable (``name`` is the argument)."""


@dataclass(frozen=True, slots=True)
class CallbackSpec:
    """Celery tasks of the caller: ``task`` gets each delivered batch, ``on_done`` the summary once."""

    task: str | None = None
    queue: str | None = None
    on_done: str | None = None


@dataclass(frozen=True, slots=True)
class JobOptions:
    """What the API is asked and where the results go."""

    siren: bool = False
    language: str | None = None
    destinations: tuple[str, ...] | None = None
    callback: CallbackSpec | None = None
    cache: str = "use"
    priority: str = "auto"

    @property
    def interactive(self) -> bool:
        """Whether the job's requests take the limiter's first lane."""
        return self.priority == "interactive"

    def to_json(self) -> str:
        """Serialize for the ledger."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobOptions:
        """Read back what ``to_json`` wrote."""
        raw = json.loads(text)
        callback = CallbackSpec(**raw["callback"]) if raw.get("callback") else None
        destinations = tuple(raw["destinations"]) if raw.get("destinations") is not None else None
        return cls(
            siren=raw["siren"],
            language=raw["language"],
            destinations=destinations,
            callback=callback,
            cache=raw.get("cache", "use"),
            priority=raw.get("priority", "auto"),
        )


def is_valid_job_id(job_id: str) -> bool:
    """Tell whether a job id is safe for keys and file names."""
    return bool(_JOB_ID.fullmatch(job_id))


def _optional_name(argument: str, value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise JobOptionsError(argument, value, f"a Celery {what} name")
    if value.strip().startswith(_OWN_PREFIX):
        raise JobOptionsError(argument, value, f"a {what} of the calling application, not dropq's own ({_OWN_PREFIX}*)")
    return value.strip()


def _parse_callback(callback: Any, own_queues: Collection[str]) -> CallbackSpec:
    if not isinstance(callback, Mapping):
        raise JobOptionsError("callback", callback, "an object with task, queue and on_done")
    unknown = set(callback) - {"task", "queue", "on_done"}
    if unknown:
        raise JobOptionsError("callback", callback, "an object with only task, queue and on_done")
    spec = CallbackSpec(
        task=_optional_name("callback.task", callback.get("task"), "task"),
        queue=_optional_name("callback.queue", callback.get("queue"), "queue"),
        on_done=_optional_name("callback.on_done", callback.get("on_done"), "task"),
    )
    if spec.queue in own_queues:  # a deployment whose DROPQ_KEY_PREFIX is not dropq has queues of its own name
        raise JobOptionsError("callback.queue", spec.queue, "a queue of the calling application, not dropq's own")
    # Without a queue the messages would follow dropq's own routing, to dropq.produce, where
    # dropq's workers would discard them as unknown tasks: the caller's workers must get them.
    if spec.queue is None and (spec.task or spec.on_done):
        raise JobOptionsError("callback.queue", None, "the queue the calling application's workers consume")
    return spec


def parse_job_options(
    *,
    siren: Any = False,
    language: Any = None,
    destinations: Any = None,
    callback: Any = None,
    cache: Any = "use",
    priority: Any = "auto",
    own_queues: Collection[str] = (),
) -> JobOptions:
    """Turn the JSON arguments of ``dropq.enrich`` into ``JobOptions``.

    ``own_queues`` are the deployment's queues, which a callback may not name.

    Raises:
        JobOptionsError: an argument has the wrong type or value.
    """
    if not isinstance(siren, bool):
        raise JobOptionsError("siren", siren, "true or false")
    if language is not None and language not in _LANGUAGES:
        raise JobOptionsError("language", language, "'fr' or 'en'")
    if cache not in CACHE_MODES:
        raise JobOptionsError("cache", cache, "'use', 'refresh' or 'off'")
    if priority not in PRIORITIES:
        raise JobOptionsError("priority", priority, "'interactive', 'bulk' or 'auto'")
    names: tuple[str, ...] | None = None
    if destinations is not None:
        if isinstance(destinations, str) or not isinstance(destinations, Sequence):
            raise JobOptionsError("destinations", destinations, "a list of destination names")
        if not all(isinstance(name, str) and name for name in destinations):
            raise JobOptionsError("destinations", destinations, "a list of destination names")
        names = tuple(dict.fromkeys(destinations))
    spec = _parse_callback(callback, own_queues) if callback is not None else None
    if names == () and (spec is None or spec.task is None):
        # The outcomes would go nowhere: no destination, and no callback task to take them.
        raise JobOptionsError(
            "destinations", [], "a non-empty list of destination names, or left out, unless callback.task takes them"
        )
    return JobOptions(siren=siren, language=language, destinations=names, callback=spec, cache=cache, priority=priority)
