"""``dropq webhooks``: serve the webhook receiver."""

from __future__ import annotations

import click

from dropq.cli.checks import settings_or_exit

__all__ = ["webhooks_command"]


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

    settings = settings_or_exit()
    if not settings.webhook_url:
        click.echo("warning: DROPQ_WEBHOOK_URL is not set, so no submit asks the API to push here", err=True)

    def send(item: Followup) -> None:
        dispatch(get_runtime(), app, item)

    receiver = create_receiver_app(get_runtime, send)
    uvicorn.run(
        receiver,
        host=host or settings.webhook_host,
        port=port if port is not None else settings.webhook_port,
        log_level="warning",
        access_log=False,  # the path holds the batch's secret token
        # A head that is late or too big, an idle connection, a flood of connections: all bounded.
        **server_limits(),
    )
