"""The ``dropq`` command line.

Each command is a thin layer over the library: it reads settings, calls the
package that does the work, and turns our errors into messages a person can
act on (exit status 2 for bad input or configuration, 1 for a failed run).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from config.celeryconfig import WORKER_QUEUES
from config.settings import SettingsError, from_env

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dropq")
def cli() -> None:
    """dropq: enrich contacts through the Dropcontact API at scale, on Celery."""


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("-c", "--concurrency", type=int, default=None, help="worker processes (default: one per core)")
@click.pass_context
def worker(ctx: click.Context, concurrency: int | None) -> None:
    """Run a worker on every dropq queue; other options go to `celery worker`."""
    _settings_or_exit()
    args = ["celery", "-A", "workers.app", "worker", "-Q", ",".join(WORKER_QUEUES), "-l", "info"]
    if concurrency:
        args += ["-c", str(concurrency)]
    args += list(ctx.args)
    os.execvp(sys.executable, [sys.executable, "-m", *args])


@cli.command()
def demo() -> None:
    """The main job on its embedded default (a smoke job until the enrich command lands)."""
    from workers.local import LocalStack

    settings = _settings_or_exit()
    with LocalStack(settings, echo=click.echo) as stack:
        answer = stack.client_app().send_task("dropq.ping").get(timeout=30)
        click.echo(f"worker answered: {answer}")


def _settings_or_exit() -> Any:
    try:
        return from_env()
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc


def main() -> None:
    """Entry point of the ``dropq`` console script."""
    cli()
