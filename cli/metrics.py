"""``dropq metrics``: serve the deployment's Prometheus metrics over HTTP, read from Redis at each scrape."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click
import redis

from dropq.cli.checks import RUN_ERROR, CliError, check_redis, settings_or_exit
from dropq.workers.metrics.collector import DropqCollector

__all__ = ["metrics_command"]

# No scrape waits longer than this for Redis: Prometheus's own timeout is 10 s by default.
_REDIS_TIMEOUT_S = 5.0


@click.command("metrics")
@click.option("--host", default=None, help="address to bind (default: DROPQ_METRICS_HOST, 127.0.0.1)")
@click.option("--port", type=int, default=None, help="port (default: DROPQ_METRICS_PORT, 9750)")
def metrics_command(host: str | None, port: int | None) -> None:
    """Serve /metrics for Prometheus: credits, limiter, jobs, batches, records, deliveries, workers, broker."""
    from prometheus_client import CollectorRegistry, start_http_server

    settings = settings_or_exit()
    check_redis(settings, local_hint=False)

    def client_for(url: str) -> redis.Redis:
        return redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=_REDIS_TIMEOUT_S, socket_connect_timeout=_REDIS_TIMEOUT_S
        )

    state = client_for(settings.redis_url)
    broker = state if settings.effective_broker_url == settings.redis_url else client_for(settings.effective_broker_url)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DropqCollector(state, settings, broker=broker))
    bind_host = host or settings.metrics_host
    bind_port = port if port is not None else settings.metrics_port
    try:
        server, thread = start_http_server(bind_port, addr=bind_host, registry=registry)
    except OSError as exc:
        raise CliError(f"cannot listen on {bind_host}:{bind_port}: {exc.strerror or exc}", RUN_ERROR) from exc
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    click.echo(f"dropq metrics: serving http://{bind_host}:{server.server_port}/metrics", err=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        state.close()
        broker.close()
