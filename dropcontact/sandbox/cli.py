"""``dropq sandbox``: the emulator as a server, every knob an option and an environment variable.

Each knob of ``SandboxConfig`` is an option ``--<knob-name>`` and a variable
``DROPQ_SANDBOX_<KNOB_NAME>``; an option given on the command line wins over
the variable, which wins over the default. ``--help`` lists them all.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import click
import structlog
import uvicorn

from dropq.dropcontact.sandbox.app import CONTROL_PREFIX, create_app
from dropq.dropcontact.sandbox.config import SandboxConfig, SandboxConfigError, env_name
from dropq.dropcontact.sandbox.server import bind_socket
from dropq.http_server import server_limits

__all__ = ["sandbox_command"]

_log = structlog.get_logger("dropq.sandbox")

_CLICK_TYPES: dict[str, click.ParamType[Any]] = {"int": click.INT, "float": click.FLOAT, "str": click.STRING}


def _knob_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for item in reversed(fields(SandboxConfig)):
        default = item.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        command = click.option(
            f"--{item.name.replace('_', '-')}",
            item.name,
            type=_CLICK_TYPES.get(str(item.type), click.STRING),
            default=None,
            help=f"{item.metadata['doc']} [env {env_name(item.name)}; default {shown}]",
        )(command)
    return command


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@_knob_options
def sandbox_command(**options: Any) -> None:
    """Run the Dropcontact API emulator: the real API's endpoints, rules and envelopes on a local port.

    It accepts only its own key (--api-key, default `sandbox`). Faults are off unless set here,
    with POST /_sandbox/config, or per request with the X-Sandbox-Fault header;
    GET /_sandbox/stats reports what it saw.
    """
    given = {name: value for name, value in options.items() if value is not None}
    try:
        # The CLI is the outer ring: it alone hands the process environment to the config.
        config = SandboxConfig.from_env(os.environ).replace(**given)
    except SandboxConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    sock = bind_socket(config.host, config.port)
    port = sock.getsockname()[1]
    # An event, not a print: `dropq sandbox` logs JSON lines when asked (the CLI configures its logging).
    _log.info(
        "sandbox_listening",
        url=f"http://{config.host}:{port}",
        stats=f"{CONTROL_PREFIX}/stats",
        processing_s=f"{config.processing_min_s:g}-{config.processing_max_s:g}",
        rate_limit=f"{config.rate_limit} per {config.rate_window_s:g} s",
    )
    _keep_collections_short()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            log_level="warning",
            log_config=None,  # uvicorn's records go through the process's logging
            access_log=False,
            **server_limits(),
            lifespan="on",
        )
    )
    server.run(sockets=[sock])


# How often the process's live objects are frozen out of the garbage collector's reach.
FREEZE_EVERY_S = 1.0


def _keep_collections_short() -> None:
    """Freeze what survives a young collection, every second, so that no collection walks the whole heap.

    A sandbox holding a backfill's batches (a few hundred thousand records, as dicts) was paused 35 to
    110 ms by each full collection, every few seconds. A paused server stamps the requests that queued
    meanwhile together, and the window a second later holds one too many: a 429 that no client can
    avoid, which benchmarks then blamed on the client (4 of the 6 429s of a 300,000-contact backfill
    came 0.95 to 0.99 s after such a pause). Frozen objects are still freed when their last reference goes; only
    a cycle among them that becomes garbage later is kept, which a test server can afford.
    """

    def freeze() -> None:
        while True:
            time.sleep(FREEZE_EVERY_S)
            gc.collect(1)
            gc.freeze()

    gc.freeze()
    threading.Thread(target=freeze, name="sandbox-gc-freeze", daemon=True).start()
