"""``dropq enrich INPUT [-o OUTPUT]``: the command and its options; the run itself is ``cli.run``."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import redis

from dropq.cli.checks import RUN_ERROR, USER_ERROR, CliError
from dropq.cli.output import EnrichResult
from dropq.cli.run import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_PART_SIZE,
    DEFAULT_PING_TIMEOUT_S,
    EnrichRequest,
    new_job_id,
    run_enrich,
)
from dropq.cli.signals import exit_status_of, interrupts_as_exceptions
from dropq.cli.summary import (
    DEFAULT_FAIL_ON,
    FAIL_ON_STATUSES,
    exit_status_for,
    parse_fail_on,
    summary_of,
    write_summary,
)

__all__ = ["enrich_command"]


def _options(command: Callable[..., Any]) -> Callable[..., Any]:
    decorators = [
        click.argument("input_path", metavar="INPUT"),
        click.option(
            "-o",
            "--output",
            help="output file (.csv or .jsonl; `-` for stdout) [default: INPUT's stem + "
            ".enriched.csv beside it; stdout when INPUT is -]",
        ),
        click.option(
            "--format",
            "out_format",
            type=click.Choice(["csv", "jsonl"]),
            help="output format [default: from -o's extension, else the input's]",
        ),
        click.option(
            "--input-format",
            type=click.Choice(["csv", "jsonl"]),
            help="input format [default: from the extension, else sniffed]",
        ),
        click.option("--encoding", help="CSV encoding, e.g. cp1252 or latin-1 [default: UTF-8, with or without BOM]"),
        click.option("--delimiter", help="CSV delimiter [default: detected among , ; tab |]"),
        click.option(
            "--map",
            "mappings",
            multiple=True,
            metavar="COLUMN=FIELD",
            help="send COLUMN as the API field FIELD (COLUMN= to never send it); repeatable",
        ),
        click.option("--siren", is_flag=True, help="ask for the French registry fields (SIREN, SIRET, NAF, ...)"),
        click.option(
            "--language", type=click.Choice(["fr", "en"]), help="civility and qualification language (API default: fr)"
        ),
        click.option(
            "--cache",
            type=click.Choice(["use", "refresh", "off"]),
            default="use",
            show_default=True,
            help="the result cache (DROPQ_CACHE_URL): answer from it, ask the API again and update it, or leave it",
        ),
        click.option(
            "--priority",
            type=click.Choice(["auto", "interactive", "bulk"]),
            default="auto",
            show_default=True,
            help="interactive jobs' requests go before bulk ones; auto: interactive for a file of at most 250 rows",
        ),
        click.option(
            "--destination",
            "destinations",
            multiple=True,
            metavar="NAME",
            help="also deliver to this destination of DROPQ_DESTINATIONS; repeatable",
        ),
        click.option("--job-id", help="the job's id; the same id attaches to that job again [default: generated]"),
        click.option(
            "--local",
            is_flag=True,
            help="start what is missing here: the sandbox without DROPCONTACT_API_KEY, a private Redis, workers",
        ),
        click.option("--no-wait", is_flag=True, help="print the job id once everything is sent, and return"),
        click.option(
            "--part-size",
            type=click.IntRange(1, 10_000),
            default=DEFAULT_PART_SIZE,
            show_default=True,
            help="contacts per dropq.enrich message",
        ),
        click.option(
            "--max-in-flight",
            type=click.IntRange(1),
            default=DEFAULT_MAX_IN_FLIGHT,
            show_default=True,
            help="records sent but not finished, at most (bounds Redis memory)",
        ),
        click.option(
            "--ping-timeout",
            "ping_timeout_s",
            type=click.FloatRange(0.05),
            default=DEFAULT_PING_TIMEOUT_S,
            show_default=True,
            help="seconds a running worker has to answer the pre-flight ping",
        ),
        click.option(
            "--raw-csv",
            is_flag=True,
            help="CSV cells as they are: no ' before cells starting with = + - @ tab CR (which a spreadsheet runs)",
        ),
        click.option(
            "--fail-on",
            default=DEFAULT_FAIL_ON,
            show_default=True,
            metavar="STATUS,...",
            callback=_fail_on,
            help=f"exit with status 3 when a row ends in one of these ({', '.join(FAIL_ON_STATUSES)}; none)",
        ),
        click.option(
            "--summary-json",
            type=click.Path(dir_okay=False, path_type=Path),
            help="write the run's counts by status, credits, duration and output path to this file (JSON)",
        ),
        click.option("-q", "--quiet", is_flag=True, help="no progress line"),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _fail_on(_ctx: click.Context, _param: click.Parameter, value: str) -> frozenset[str]:
    try:
        return parse_fail_on(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


_EPILOG = """\b
Exit status:
  0    every row came back, none in a --fail-on status (also --no-wait once sent)
  3    finished, and some rows ended in a --fail-on status (default: failed)
  1    the run failed (Redis, workers or the API not answering)
  2    usage or configuration (an option, the input, a variable, the token)
  130  Ctrl-C (143 SIGTERM, 129 SIGHUP): stopped; the job is not cancelled"""


@click.command("enrich", epilog=_EPILOG)
@_options
def enrich_command(**options: Any) -> None:
    """Enrich a CSV or JSON Lines file (or - for stdin) through Dropcontact: one row out per row in.

    The output keeps every input column and adds the enriched fields, a status
    (enriched, not_found, rejected, duplicate, failed) and a reason. Columns are
    matched to API fields by their usual names; other columns are never sent.
    """
    no_wait = options.pop("no_wait")
    mappings = tuple(options.pop("mappings"))
    destinations = tuple(options.pop("destinations"))
    fail_on: frozenset[str] = options.pop("fail_on")
    summary_path: Path | None = options.pop("summary_json")
    req = EnrichRequest(**options, mappings=mappings, destinations=destinations, wait=not no_wait)
    if req.job_id is None:  # chosen here, so that a summary of a run cut short still names its job
        req = dataclasses.replace(req, job_id=new_job_id(datetime.now()))
    started_s = time.monotonic()

    def summarise(state: str, status: int, result: EnrichResult | None = None, error: str | None = None) -> None:
        if summary_path is None:
            return
        output = req.output or ("-" if req.input_path == "-" else None)
        summary = summary_of(
            state=state, exit_status=status, job_id=req.job_id, output=result.output if result else output,
            counts=result.counts if result else None, sent=result.sent if result else None,
            unreadable=result.unreadable if result else 0, credits_used=result.credits_used if result else None,
            duration_s=time.monotonic() - started_s, synthetic=result.synthetic if result else False,
            fail_on=fail_on, error=error,
        )  # fmt: skip
        write_summary(summary_path, summary)

    try:
        with interrupts_as_exceptions():
            if req.input_path != "-" and not Path(req.input_path).exists():
                raise CliError(f"{req.input_path}: no such file", USER_ERROR)
            try:
                result = run_enrich(req)
            except redis.RedisError as exc:
                raise CliError(f"Redis stopped answering during the run: {exc}", RUN_ERROR) from exc
    except KeyboardInterrupt as interrupt:
        status = exit_status_of(interrupt)
        summarise("interrupted", status, error="interrupted by a signal; the job was not cancelled")
        raise click.exceptions.Exit(status) from None
    except CliError as exc:
        summarise("error", exc.exit_code, error=exc.format_message())
        raise
    sys.stdout.flush()
    if result is None:
        summarise("sent", 0)
        return
    status = exit_status_for(result.counts, fail_on)
    summarise("finished", status, result)
    if status:
        failing = ", ".join(f"{result.counts[s]:,} {s.replace('_', ' ')}" for s in sorted(fail_on) if result.counts[s])
        click.echo(f"exit status {status}: {failing} (--fail-on {','.join(sorted(fail_on))})", err=True)
        raise click.exceptions.Exit(status)
