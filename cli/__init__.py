"""The ``dropq`` command line.

Each command is a thin layer over the library: it reads settings, calls the
package that does the work, and turns our errors into messages a person can
act on (exit status 2 for bad input or configuration, 1 for a failed run,
3 for a finished ``enrich`` with rows in a ``--fail-on`` status, 130 on Ctrl-C
and 128 + the signal on SIGTERM or SIGHUP: see ``summary.py`` and ``signals.py``).

- ``enrich``: a file in, one job, the enriched file out (``enrich.py``).
- ``demo``: ``enrich`` on the sample contacts with everything local (``demo.py``).
- ``status`` and ``credits``: a job's ledger, the account's balance (``status.py``).
- ``worker``: a Celery worker on every dropq queue (``worker.py``).
- ``sandbox``: the API emulator as a server (``dropcontact.sandbox.cli``).
- ``webhooks``: the receiver the API pushes results to (``webhooks.py``).
- ``cache``: forget a contact, clear or purge the result cache (``cache.py``).
- ``metrics``: the deployment's Prometheus metrics, read from Redis (``metrics.py``).
- ``flower``: Flower on dropq's app, behind basic auth (``flower.py``).
- ``health``: one line and 0 or 1, for healthchecks (``health.py``).
"""

from __future__ import annotations

import click

from dropq.cli.cache import cache_command
from dropq.cli.demo import demo_command
from dropq.cli.enrich import enrich_command
from dropq.cli.flower import flower_command
from dropq.cli.health import health_command
from dropq.cli.metrics import metrics_command
from dropq.cli.serving import with_server_logging
from dropq.cli.status import credits_command, status_command
from dropq.cli.webhooks import webhooks_command
from dropq.cli.worker import worker_command
from dropq.dropcontact.sandbox.cli import sandbox_command

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.version_option(package_name="dropq")
def cli() -> None:
    """dropq: enrich contacts through the Dropcontact API at scale, on Celery."""


cli.add_command(enrich_command, name="enrich")
cli.add_command(demo_command, name="demo")
cli.add_command(status_command, name="status")
cli.add_command(credits_command, name="credits")
cli.add_command(worker_command, name="worker")
cli.add_command(with_server_logging(sandbox_command), name="sandbox")
cli.add_command(webhooks_command, name="webhooks")
cli.add_command(cache_command, name="cache")
cli.add_command(metrics_command, name="metrics")
cli.add_command(flower_command, name="flower")
cli.add_command(health_command, name="health")


def main() -> None:
    """Entry point of the ``dropq`` console script."""
    cli()
