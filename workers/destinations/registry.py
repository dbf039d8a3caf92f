"""Build the destinations of a job from the config file and the job's options."""

from __future__ import annotations

import redis
from celery import Celery

from dropq.config.destinations import DestinationsConfig
from dropq.workers.destinations.base import Destination, DestinationError
from dropq.workers.destinations.callback import CALLBACK_NAME, CallbackDestination
from dropq.workers.destinations.files import CsvDestination, JsonlDestination
from dropq.workers.destinations.http import HttpDestination
from dropq.workers.destinations.postgres import PostgresDestination
from dropq.workers.destinations.stream import StreamDestination
from dropq.workers.jobs.options import JobOptions

__all__ = ["DestinationRegistry"]


class DestinationRegistry:
    """Knows every configured destination and picks those of a job.

    Args:
        config: the loaded destination file.
        client: Redis, for the stream destination.
        app: the Celery app, for callbacks.
        ttl_s: TTL of stream data.
    """

    def __init__(self, config: DestinationsConfig, client: redis.Redis, app: Celery, ttl_s: int) -> None:
        self._config = config
        self._app = app
        self._named: dict[str, Destination] = {}
        for name, entry in config.destinations.items():
            if entry.type == "jsonl":
                self._named[name] = JsonlDestination(name, entry.options.get("directory", "out"))
            elif entry.type == "csv":
                self._named[name] = CsvDestination(
                    name,
                    entry.options.get("directory", "out"),
                    escape_formulas=entry.options.get("escape_formulas", True),
                )
            elif entry.type == "stream":
                self._named[name] = StreamDestination(client, ttl_s, name=name)
            elif entry.type == "postgres":
                self._named[name] = PostgresDestination(name, entry.secrets["dsn"], entry.options["table"])
            elif entry.type == "http":
                headers = {**entry.options["headers"], **entry.secrets}
                self._named[name] = HttpDestination(name, entry.options["url"], headers, entry.options["timeout_s"])

    def names_for(self, options: JobOptions) -> tuple[str, ...]:
        """The destination names of a job: those it asked for (or the default), plus its callback.

        Raises:
            DestinationError: the job names a destination the config does not have.
        """
        chosen = options.destinations if options.destinations is not None else self._config.default
        unknown = [name for name in chosen if name not in self._named]
        if unknown:
            known = ", ".join(sorted(self._named))
            raise DestinationError(unknown[0], f"not in the destination config (known: {known})", is_transient=False)
        if options.callback and options.callback.task:
            return (*chosen, CALLBACK_NAME)
        return tuple(chosen)

    def is_local(self, name: str) -> bool:
        """Whether writing to ``name`` is a quick local step (a file, the Redis stream), done inline."""
        return isinstance(self._named.get(name), JsonlDestination | CsvDestination | StreamDestination)

    def get(self, name: str, options: JobOptions) -> Destination:
        """The destination called ``name`` for a job with these options."""
        if name == CALLBACK_NAME and options.callback and options.callback.task:
            return CallbackDestination(self._app, options.callback.task, options.callback.queue)
        return self._named[name]
