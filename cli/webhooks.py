"""``dropq webhooks``: serve the webhook receiver."""

from __future__ import annotations

import click
import structlog

from dropq.cli.serving import start_server_logging

__all__ = ["webhooks_command"]

_log = structlog.get_logger("dropq.webhooks")


@click.command()
@click.option("--host", default=None, help="address to bind (default: DROPQ_WEBHOOK_HOST, 0.0.0.0)")
@click.option("--port", type=int, default=None, help="port (default: DROPQ_WEBHOOK_PORT, 8081)")
def webhooks_command(host: str | None, port: int | None) -> None:
    """Serve the webhook receiver; set DROPQ_WEBHOOK_URL (its public URL) on the workers too."""
    import uvicorn

    from dropq.http_server import server_limits
    from dropq.workers.app import app
    from dropq.workers.pipeline.dispatch import dispatch
    from dropq.workers.pipeline.followup import Followup
    from dropq.workers.runtime import get_runtime
    from dropq.workers.webhook_receiver import create_receiver_app

    settings = start_server_logging()
    if not settings.webhook_url:
        _log.warning("webhook_url_unset", reason="DROPQ_WEBHOOK_URL is not set, so no submit asks the API to push here")

    def send(item: Followup) -> None:
        dispatch(get_runtime(), app, item)

    receiver = create_receiver_app(get_runtime, send)
    bind = (host or settings.webhook_host, port if port is not None else settings.webhook_port)
    _log.info("receiver_listening", address=bind[0], port=bind[1], prefix=settings.key_prefix)
    uvicorn.run(
        receiver,
        host=bind[0],
        port=bind[1],
        log_level="warning",
        log_config=None,  # uvicorn's records go through the process's logging (JSON lines when asked)
        access_log=False,  # the path holds the batch's secret token
        # A head that is late or too big, an idle connection, a flood of connections: all bounded.
        **server_limits(),
    )
