"""``dropq worker``: ``celery -A dropq worker`` with our defaults; other options go to Celery.

The queues need no ``-Q``: the app declares them, and a plain Celery worker consumes exactly those.
"""

from __future__ import annotations

import os
import sys

import click

from dropq.cli.checks import settings_or_exit

__all__ = ["worker_command"]


@click.command("worker", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("-c", "--concurrency", type=int, default=None, help="worker processes (default: one per core)")
@click.option("-l", "--loglevel", default="info", show_default=True, help="Celery's log level")
@click.pass_context
def worker_command(ctx: click.Context, concurrency: int | None, loglevel: str) -> None:
    """Run a worker on every dropq queue; other options (e.g. -n, -P, --autoscale) go to `celery worker`."""
    settings_or_exit()
    args = ["celery", "-A", "dropq", "worker", "-l", loglevel]
    if concurrency:
        args += ["-c", str(concurrency)]
    args += list(ctx.args)
    os.execvp(sys.executable, [sys.executable, "-m", *args])
