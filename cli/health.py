"""``dropq health``: one line and an exit status (0 healthy, 1 not), for healthchecks and people.

It checks what a deployment needs to make progress, each within a bounded time:

- **Redis** (``REDIS_URL``, and a Redis broker when separate) answers ``PING``;
- **a worker** of this deployment answers a ping and consumes its queue
  (``{DROPQ_KEY_PREFIX}.produce``); with ``--here``, one on this host (a container's own workers);
- **the limiter is not stuck**: no cooldown longer than any 429 can set, no bucket promising
  grants far ahead (a clock that jumped), and no limiter key without its TTL.

A paused account (out of credits) is reported but healthy: restarting a worker would not help,
and submits resume by themselves. Docker reads any status but 0 as unhealthy, so even a bad
setting exits 1 (not the CLI's usual 2).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

import click
import redis

from dropq.cli.checks import CliError, deployment_workers, safe_url, settings_or_exit
from dropq.cli.local import client_app
from dropq.config.celeryconfig import STAGES, queue_name
from dropq.config.settings import Settings
from dropq.workers import keys
from dropq.workers.limiter.credits import CreditGuard
from dropq.workers.limiter.gcra import LimiterPolicy
from dropq.workers.limiter.limiter import RateLimiter
from dropq.workers.limiter.redis_store import RedisStore
from dropq.workers.runtime import SANDBOX_DEFAULT_KEY

__all__ = ["health_command", "limiter_problem", "HEALTHY", "UNHEALTHY"]

HEALTHY = 0
UNHEALTHY = 1
# How long each probe may take by default: a healthcheck's own timeout is a few seconds.
DEFAULT_TIMEOUT_S = 3.0
# A bucket may promise grants a little ahead (a burst within its tolerance); a minute ahead is a
# schedule no worker will ever catch up with: a clock that jumped, or a corrupt key.
MAX_BACKLOG_MS = 60_000
# Redis's answer to PTTL for a key that exists without a TTL.
_NO_TTL = -1


@dataclass(frozen=True, slots=True)
class _Probe:
    ok: bool
    text: str


def limiter_problem(cooldown_ms: int, backlog_ms: int, ttls_ms: dict[str, int], policy: LimiterPolicy) -> str | None:
    """What makes a limiter stuck, or None when it is not.

    Args:
        cooldown_ms: the cooldown left.
        backlog_ms: how far the bucket's schedule is ahead of now.
        ttls_ms: the PTTL of each limiter key that exists, by name.
        policy: the limiter's tunables (the longest cooldown a 429 can set).

    Returns:
        A phrase naming the problem, or None.
    """
    longest = max(policy.max_server_wait_ms, policy.backoff_cap_ms)
    if cooldown_ms > longest:
        return f"cooldown of {cooldown_ms} ms, longer than any 429 sets ({longest} ms)"
    if backlog_ms > MAX_BACKLOG_MS:
        return f"bucket scheduled {backlog_ms} ms ahead (more than {MAX_BACKLOG_MS} ms)"
    never = sorted(name for name, ttl in ttls_ms.items() if ttl == _NO_TTL)
    if never:
        return f"key(s) without a TTL: {', '.join(never)}"
    return None


def _probe_redis(settings: Settings, timeout_s: float) -> _Probe:
    times = []
    for url in dict.fromkeys((settings.redis_url, settings.effective_broker_url)):
        if not url.startswith(("redis://", "rediss://", "unix://")):
            continue
        started = time.monotonic()
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        try:
            client.ping()
        except (redis.RedisError, OSError) as exc:
            return _Probe(False, f"redis {safe_url(url)} not answering ({type(exc).__name__})")
        finally:
            client.close()
        times.append(f"{(time.monotonic() - started) * 1000:.0f} ms")
    return _Probe(True, "redis " + "/".join(times))


def _probe_workers(settings: Settings, timeout_s: float, here: bool) -> _Probe:
    app = client_app(settings)
    try:
        found = deployment_workers(app, settings, timeout_s)
    except Exception as exc:  # kombu raises many types; the line says which
        return _Probe(
            False, f"workers: cannot ping on {safe_url(settings.effective_broker_url)} ({type(exc).__name__})"
        )
    finally:
        app.close()
    if here:
        found = [name for name in found if name.endswith("@" + socket.gethostname())]
    where = f" on {socket.gethostname()}" if here else ""
    if not found:
        return _Probe(False, f"no worker{where} consumes {queue_name(settings, STAGES[0])}")
    return _Probe(True, f"{len(found)} worker(s){where} ({found[0]}{', ...' if len(found) > 1 else ''})")


def _probe_limiter(settings: Settings, timeout_s: float) -> _Probe:
    account = keys.account_id(settings.api_key or SANDBOX_DEFAULT_KEY)
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        limiter = RateLimiter(RedisStore(client), account, settings.rate_limit)
        state = limiter.state()
        names = {"limiter": keys.limiter_key(account), "cooldown": keys.cooldown_key(account)}
        pipe = client.pipeline(transaction=False)
        for key in names.values():
            pipe.pttl(key)
        ttls = {name: int(ttl) for name, ttl in zip(names, pipe.execute(), strict=True) if int(ttl) != -2}
        paused = CreditGuard(client, account).is_paused()
    except (redis.RedisError, OSError) as exc:
        return _Probe(False, f"limiter unreadable ({type(exc).__name__})")
    finally:
        client.close()
    problem = limiter_problem(state.cooldown_ms, state.backlog_ms, ttls, LimiterPolicy(settings.rate_limit))
    if problem:
        return _Probe(False, f"limiter stuck: {problem}")
    text = f"limiter {settings.rate_limit:g}/s x{state.factor_ppm / 1_000_000:.2f}"
    text += f", cooling down {state.cooldown_ms} ms" if state.cooldown_ms else ""
    return _Probe(True, text + (", credits paused" if paused else ""))


@click.command("health")
@click.option("--here", is_flag=True, help="only a worker on this host counts (a container's own workers)")
@click.option("--no-worker", is_flag=True, help="check Redis and the limiter only (Flower, the receiver)")
@click.option(
    "--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=DEFAULT_TIMEOUT_S, show_default=True,
    help="seconds each probe may take",
)  # fmt: skip
def health_command(here: bool, no_worker: bool, timeout_s: float) -> None:
    """Check Redis, a worker of this deployment and the limiter; print one line, exit 0 (healthy) or 1."""
    try:
        settings = settings_or_exit()
    except CliError as exc:
        click.echo(f"unhealthy: {exc.format_message()}")
        raise click.exceptions.Exit(UNHEALTHY) from exc
    probes = [_probe_redis(settings, timeout_s)]
    if probes[0].ok:
        probes.append(_probe_limiter(settings, timeout_s))
        if not no_worker:
            probes.append(_probe_workers(settings, timeout_s, here))
    healthy = all(p.ok for p in probes)
    shown = probes if healthy else [p for p in probes if not p.ok]
    click.echo(("ok: " if healthy else "unhealthy: ") + "; ".join(p.text for p in shown))
    raise click.exceptions.Exit(HEALTHY if healthy else UNHEALTHY)
