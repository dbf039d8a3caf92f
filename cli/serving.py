"""What every long-running ``dropq`` server command does first: logging as the workers log.

``dropq webhooks``, ``dropq sandbox`` and ``dropq flower`` are processes of their own, outside
Celery's worker start-up that configures a worker's logging: each configures it here, before it
serves, so that ``DROPQ_LOG_FORMAT=json`` gives one JSON event per line, with host and pid,
through the secret scrubber, as a worker's do. Uvicorn's and Tornado's loggers then go through
the same handler (they are started with no logging configuration of their own).
"""

from __future__ import annotations

from typing import Any

import click

from dropq.cli.checks import settings_or_exit
from dropq.config.settings import Settings
from dropq.workers.logs import configure_logging

__all__ = ["start_server_logging", "with_server_logging"]


def start_server_logging() -> Settings:
    """Read the settings (or exit naming the bad variable) and configure this process's logging."""
    settings = settings_or_exit()
    configure_logging(settings)
    return settings


def with_server_logging(command: click.Command) -> click.Command:
    """The same command, its logging configured before it runs (for commands defined below the CLI)."""
    callback = command.callback

    def run(**options: Any) -> Any:
        start_server_logging()
        return callback(**options) if callback is not None else None

    return click.Command(
        command.name,
        params=command.params,
        callback=run,
        help=command.help,
        short_help=command.short_help,
        context_settings=command.context_settings,
    )
