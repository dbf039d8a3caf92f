"""``dropq status JOB_ID`` (the job's ledger, the account's credits and limiter) and ``dropq credits``."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import click
import redis

from dropq.cli.checks import DETACHED, RUN_ERROR, CliError, check_redis, check_token, safe_url, settings_or_exit
from dropq.cli.local import LocalStack
from dropq.cli.progress import JobProgress, RateMeter
from dropq.cli.signals import exit_status_of, interrupts_as_exceptions
from dropq.config.settings import Settings
from dropq.workers import keys
from dropq.workers.jobs.ledger import JobLedger, JobStatus
from dropq.workers.limiter.credits import CreditGuard
from dropq.workers.limiter.limiter import RateLimiter
from dropq.workers.limiter.redis_store import RedisStore
from dropq.workers.runtime import SANDBOX_DEFAULT_KEY

__all__ = ["status_command", "credits_command", "describe_job"]

# Refresh period of `dropq status --wait`.
_WAIT_REFRESH_S = 0.5


def _when(ms: int) -> str | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds") if ms else None


def describe_job(client: redis.Redis, settings: Settings, status: JobStatus) -> dict[str, Any]:
    """The JSON of ``dropq status``: the ledger with the accounting check, credits and limiter."""
    account = keys.account_id(settings.api_key or SANDBOX_DEFAULT_KEY)
    credits = CreditGuard(
        client, account, budget_per_day=settings.credit_budget_per_day, recheck_s=settings.credit_recheck_s
    ).status()
    limiter = RateLimiter(RedisStore(client), account, settings.rate_limit).state()
    job = status.summary()
    job["accounted"] = status.accounted
    # The invariant, checkable at any time: nothing may be missing once the job is finished.
    job["is_fully_accounted"] = status.accounted == status.received
    job["created_at"] = _when(status.created_ms)
    job["finished_at"] = _when(status.finished_ms)
    return {
        "job": job,
        "credits": credits,
        "limiter": {
            "rate_limit_per_s": settings.rate_limit,
            "adaptive_factor": limiter.factor_ppm / 1_000_000,
            "cooldown_ms": limiter.cooldown_ms,
            "strikes": limiter.strikes,
        },
    }


def _print_text(report: dict[str, Any]) -> None:
    job, credits, limiter = report["job"], report["credits"], report["limiter"]
    rows = [
        ("job", job["job_id"]),
        ("state", job["state"] + (f" (fatal: {job['fatal_reason']})" if job["fatal_reason"] else "")),
        ("created", job["created_at"] or "-"),
        ("finished", job["finished_at"] or "-"),
        ("received", f"{job['received']:,}"),
        ("delivered", f"{job['delivered']:,} (enriched {job['enriched']:,}, not found {job['not_found']:,})"),
        ("rejected", f"{job['rejected']:,}"),
        ("duplicates", f"{job['duplicates']:,}"),
        ("failed", f"{job['failed']:,}"),
        ("accounted", f"{job['accounted']:,} of {job['received']:,}" + (" ok" if job["is_fully_accounted"] else "")),
        ("batches", f"{job['batches_done']:,} done, {job['batches_submitted']:,} submitted, {job['batches']:,} in all"),
        ("credits used", f"{job['credits_used']:,}"),
        ("balance", "unknown" if credits["balance"] is None else f"{credits['balance']:,}"),
        ("submits", f"paused (needs {credits['paused_needed']})" if credits["paused"] else "running"),
        (
            "daily budget",
            "none"
            if credits["budget_per_day"] is None
            else f"{credits['budget_spent_today']:,} of {credits['budget_per_day']:,} spent today",
        ),
        (
            "rate limit",
            f"{limiter['rate_limit_per_s']:g}/s x {limiter['adaptive_factor']:.2f}"
            + (f", cooling down {limiter['cooldown_ms']} ms" if limiter["cooldown_ms"] else ""),
        ),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        click.echo(f"{name.ljust(width)}  {value}")


@click.command("status")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option("--wait", is_flag=True, help="watch with the progress line until the job is finished")
def status_command(job_id: str, as_json: bool, wait: bool) -> None:
    """Show a job's ledger: counts, state, the accounting check, credits and the rate limiter."""
    settings = settings_or_exit()
    check_redis(settings, local_hint=False)
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        ledger = JobLedger(client, settings.job_ttl_s)
        status = ledger.read(job_id)
        if status is None:
            raise CliError(
                f"no job {job_id!r} in Redis at {safe_url(settings.redis_url)} (finished jobs are kept "
                f"{settings.job_ttl_s // 3600} h)",
                RUN_ERROR,
            )
        if wait and not status.is_finished:
            status = _watch(ledger, status)
        report = describe_job(client, settings, status)
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_text(report)


def _watch(ledger: JobLedger, status: JobStatus) -> JobStatus:
    progress, rate = JobProgress(), RateMeter()
    try:
        while not status.is_finished:
            progress.show(status, sent=status.received, total=None, rate=rate.rate(status.accounted, time.monotonic()))
            time.sleep(_WAIT_REFRESH_S)
            status = ledger.read(status.job_id) or status
    except KeyboardInterrupt:
        progress.end()
        raise click.exceptions.Exit(DETACHED) from None
    progress.end()
    return status


@click.command("credits")
@click.option("--local", is_flag=True, help="without DROPCONTACT_API_KEY, ask a sandbox started for this command")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def credits_command(local: bool, as_json: bool) -> None:
    """Print the account's credits left (the free endpoint: costs nothing)."""
    settings = settings_or_exit()
    synthetic = local and not settings.api_key
    if synthetic:
        # One number is asked for: where it came from is said on its line, not in a banner before it.
        try:
            with interrupts_as_exceptions(), LocalStack(settings, echo=lambda _text: None, sandbox=True, workers=0,
                                                        redis=False) as stack:  # fmt: skip
                balance = check_token(stack.settings)
        except KeyboardInterrupt as interrupt:
            raise click.exceptions.Exit(exit_status_of(interrupt)) from None
    else:
        balance = check_token(settings)
    if as_json:
        click.echo(json.dumps({"credits": balance, "synthetic": synthetic}))
    else:
        suffix = " (synthetic: the balance of a sandbox started for this command)" if synthetic else ""
        click.echo(f"{balance:,} credits left{suffix}")
