"""``dropq enrich INPUT [-o OUTPUT]``: the command and its options; the run itself is ``cli.run``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dropq.cli.checks import DETACHED, USER_ERROR, CliError
from dropq.cli.run import DEFAULT_MAX_IN_FLIGHT, DEFAULT_PART_SIZE, DEFAULT_PING_TIMEOUT_S, EnrichRequest, run_enrich

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
        click.option("-q", "--quiet", is_flag=True, help="no progress line"),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


@click.command("enrich")
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
    req = EnrichRequest(**options, mappings=mappings, destinations=destinations, wait=not no_wait)
    if req.input_path != "-" and not Path(req.input_path).exists():
        raise CliError(f"{req.input_path}: no such file", USER_ERROR)
    try:
        run_enrich(req)
    except KeyboardInterrupt:
        raise click.exceptions.Exit(DETACHED) from None
    sys.stdout.flush()
