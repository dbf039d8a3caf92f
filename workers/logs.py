"""structlog for every dropq process, wired through Celery's signals.

JSON lines off a terminal, a readable console on one; ISO UTC timestamps;
context in contextvars, bound per task (task id and name, then job, batch and
request ids as the task learns them). Celery's own loggers go through the same
renderer, and so do Python's warnings and the lines a worker would print itself
(its banner becomes one ``worker_starting`` event; ``Warm shutdown`` and the
other signal notices become ``worker_signal`` events). Every event carries the
``host`` and ``pid`` it came from. A processor scrubs every secret (the API key,
passwords, the destinations' DSNs and headers) from every event, whatever field
it hides in.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog
from celery import signals

from dropq.config.destinations import DestinationConfigError, load_destinations
from dropq.config.settings import Settings

__all__ = ["install", "configure_logging", "SecretScrubber", "bind_task_context", "REDACTED"]

REDACTED = "[redacted]"

_log = structlog.get_logger("dropq.task")


class SecretScrubber:
    """A structlog processor that replaces every secret value by ``[redacted]``.

    It looks into strings, nested mappings and sequences, so a secret cannot
    leak through an exception text, a URL or a header dictionary.
    """

    def __init__(self, secrets: Iterable[str | None]) -> None:
        # Too-short values would redact ordinary words; an API key is long.
        self._secrets = tuple(s for s in secrets if s and len(s) >= 4)

    def scrub(self, value: Any) -> Any:
        """Return ``value`` with every secret replaced."""
        if not self._secrets:
            return value
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.scrub(v) for v in value)
        if isinstance(value, BaseException):
            return self.scrub(repr(value))
        return value

    def __call__(self, logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, value in list(event_dict.items()):
            event_dict[key] = self.scrub(value)
        return event_dict


def add_process(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: the host and pid of the process (a pool child has its own pid)."""
    event_dict.setdefault("host", _HOST)
    event_dict.setdefault("pid", os.getpid())
    return event_dict


_HOST = socket.gethostname()


def _destination_secrets(settings: Settings) -> list[str]:
    """The DSNs and header values of the destination file, to scrub like the API key (none if it can't load)."""
    try:
        config = load_destinations(settings.destinations_path)
    except DestinationConfigError:
        return []  # the runtime reports the bad file when it loads it
    return [secret for entry in config.destinations.values() for secret in entry.secrets.values()]


def configure_logging(settings: Settings, *, stream: Any = None) -> None:
    """Configure structlog and the standard library logging for this process.

    Args:
        settings: gives the level, the renderer choice and the secrets to scrub.
        stream: where lines go; standard error by default.
    """
    out = stream or sys.stderr
    level = getattr(logging, settings.log_level.upper())
    is_json = settings.log_format == "json" or (settings.log_format == "auto" and not _is_tty(out))
    scrubber = SecretScrubber([*settings.secrets, *_destination_secrets(settings)])
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_process,
        structlog.processors.StackInfoRenderer(),
        # Tracebacks are rendered to text first, in both renderers, so that the scrubber sees them too.
        structlog.processors.format_exc_info,
        scrubber,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if is_json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # A warnings.warn (Celery's deprecation notices, a library's) is an event too, not a bare line.
    logging.captureWarnings(True)
    # Celery's per-task logger otherwise formats lines its own way and propagates twice.
    for name in ("celery", "celery.task", "celery.worker", "celery.app.trace", "kombu"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # Routine per-request lines would drown the events that matter; dropq logs one summary per task itself.
    for name in ("urllib3", "uvicorn.access", "celery.app.trace", "celery.worker.strategy"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def _route_worker_notices() -> None:
    """Make the lines a Celery worker writes itself (``Warm shutdown``...) log events instead."""
    from celery.apps import worker as celery_worker

    notices = structlog.get_logger("celery.worker")

    def say(msg: str, f: Any = None) -> None:
        # A shutdown asked for is routine (a deploy, a scale-down): info, like the banner it replaces.
        notices.info("worker_signal", notice=str(msg).strip())

    # Celery has no hook for these: its signal handlers call this module function by name.
    celery_worker.safe_say = say


def _is_tty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def bind_task_context(**fields: Any) -> None:
    """Bind fields (job, batch or request ids) to every later log line of the running task."""
    structlog.contextvars.bind_contextvars(**fields)


_installed: list[Settings] = []


def install(settings: Settings) -> None:
    """Connect the logging signal handlers once per process.

    Args:
        settings: the process settings.
    """
    if _installed:
        return
    _installed.append(settings)

    # Connecting to setup_logging tells Celery not to configure logging itself.
    @signals.setup_logging.connect(weak=False)
    def _on_setup_logging(**_: Any) -> None:
        configure_logging(settings)

    @signals.celeryd_init.connect(weak=False)
    def _quiet_worker(instance: Any = None, **_: Any) -> None:
        # Configured this early (Celery's own setup comes later): the superuser warning comes right after.
        configure_logging(settings)
        # The banner is printed, not logged: off, and said as one event once the worker is set up.
        if instance is not None:
            instance.quiet = True
        _route_worker_notices()

    @signals.celeryd_after_setup.connect(weak=False)
    def _announce_worker(sender: Any = None, instance: Any = None, **_: Any) -> None:
        consumer = getattr(instance, "app", None)
        queues = sorted(consumer.amqp.queues.consume_from) if consumer is not None else []
        _log.info(
            "worker_starting",
            worker=str(sender),
            queues=queues,
            # Celery's pool classes are all TaskPool: the module says which (thread, prefork, solo...).
            pool=str(getattr(getattr(instance, "pool_cls", None), "__module__", "")).rsplit(".", 1)[-1] or None,
            concurrency=getattr(instance, "concurrency", None),
        )

    started_ns: dict[str | None, int] = {}

    @signals.task_prerun.connect(weak=False)
    def _bind_task(task_id: str | None = None, task: Any = None, **_: Any) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(task_id=task_id, task_name=getattr(task, "name", None))
        started_ns[task_id] = time.monotonic_ns()

    @signals.task_postrun.connect(weak=False)
    def _summarise_task(task_id: str | None = None, state: str | None = None, **_: Any) -> None:
        # One summary line per task, with whatever ids the task bound on the way.
        started = started_ns.pop(task_id, None)
        duration_ms = (time.monotonic_ns() - started) // 1_000_000 if started else None
        _log.info("task_finished", state=state, duration_ms=duration_ms)
        structlog.contextvars.clear_contextvars()
