"""``dropq flower``: Celery's Flower on dropq's app, behind basic auth, logging as the workers do.

Plain ``celery -A dropq flower`` still works; this command adds what a deployment needs:

- it refuses to listen beyond the loopback without ``FLOWER_BASIC_AUTH`` (``user:password``, several
  separated by commas) or ``FLOWER_BASIC_AUTH_FILE``: Flower's pages and API are open otherwise;
- the auth goes to Flower as an option of this process, never on a command line (``ps``) and never
  as ``FLOWER_BASIC_AUTH_FILE``, a variable Flower would refuse (it reads every ``FLOWER_*`` itself);
- Flower runs in this process, after dropq's logging is configured, so its lines (Tornado's) are
  events of the same format (JSON lines with ``DROPQ_LOG_FORMAT=json``), with the secrets scrubbed.

``GET /healthcheck`` answers ``OK`` without auth: compose's healthcheck uses it.
"""

from __future__ import annotations

import ipaddress
import logging
import os

import click

from dropq.cli.checks import USER_ERROR, CliError
from dropq.cli.serving import start_server_logging

__all__ = ["flower_command", "is_loopback"]

DEFAULT_FLOWER_PORT = 5555
# Flower listens here unless told otherwise: only this machine can reach an unauthenticated Flower.
DEFAULT_FLOWER_ADDRESS = "127.0.0.1"
# The variable Flower would choke on (it maps each FLOWER_* variable to one of its options).
_AUTH_FILE_VARIABLE = "FLOWER_BASIC_AUTH_FILE"


def is_loopback(address: str) -> bool:
    """Whether only this machine can reach ``address`` (``localhost``, ``127.x``, ``::1``)."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@click.command("flower", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--address", default=DEFAULT_FLOWER_ADDRESS, show_default=True, help="address to listen on")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_FLOWER_PORT, show_default=True, help="port")
@click.pass_context
def flower_command(ctx: click.Context, address: str, port: int) -> None:
    """Run Flower on dropq's app, with basic auth (FLOWER_BASIC_AUTH) off the loopback; other options go to Flower."""
    settings = start_server_logging()
    if not settings.flower_basic_auth and not is_loopback(address):
        raise CliError(
            f"Flower on {address} would be open to anyone who reaches it: set FLOWER_BASIC_AUTH (user:password) "
            f"or {_AUTH_FILE_VARIABLE}, or listen on 127.0.0.1",
            USER_ERROR,
        )
    os.environ.pop(_AUTH_FILE_VARIABLE, None)
    # Each request's line would drown the events that matter (a healthcheck every few seconds).
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    from celery.bin.celery import celery as celery_command

    args = ["-A", "dropq", "flower", f"--address={address}", f"--port={port}", f"--logging={settings.log_level}"]
    if settings.flower_basic_auth:
        args.append(f"--basic-auth={settings.flower_basic_auth}")
    celery_command.main(args=[*args, *ctx.args], prog_name="celery")
