"""``dropq demo``: the sample contacts enriched end to end on this machine, then a summary table.

It is ``dropq enrich examples/contacts.csv -o out/demo-enriched.csv --local
--siren`` on the sandbox (whatever ``DROPCONTACT_API_KEY`` says, unless
``--api``: the sample's people are made up, and real credits should not go
on them by accident), with a private Redis when none answers and local
workers for the duration.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import click

from dropq.cli.checks import USER_ERROR, CliError
from dropq.cli.output import EnrichResult
from dropq.cli.progress import format_duration
from dropq.cli.run import EnrichRequest, run_enrich
from dropq.cli.signals import exit_status_of, interrupts_as_exceptions
from dropq.workers.jobs.outcomes import STATUSES

__all__ = ["demo_command", "sample_path", "format_summary"]

# Where the demo writes, relative to the current folder (the repository's out/ when run by `make demo`).
DEFAULT_DEMO_OUTPUT = "out/demo-enriched.csv"
# The sample ships inside the package (``dropq.examples`` is the repository's examples/ folder).
_SAMPLE_PACKAGE = "dropq.examples"
_SAMPLE_NAME = "contacts.csv"


def sample_path() -> Path:
    """The sample contacts, wherever dropq is installed (a wheel, an editable install, a checkout)."""
    return Path(str(files(_SAMPLE_PACKAGE).joinpath(_SAMPLE_NAME)))


def format_summary(result: EnrichResult) -> str:
    """The demo's closing table: rows per status, credits, time and the output's path."""
    total = sum(result.counts.values()) or 1
    lines = ["", f"{'status':<12}{'rows':>8}{'share':>9}"]
    for status in STATUSES:
        count = result.counts.get(status, 0)
        lines.append(f"{status:<12}{count:>8,}{count / total:>9.1%}")
    lines.append(f"{'total':<12}{sum(result.counts.values()):>8,}")
    lines += [
        "",
        f"credits used  {result.credits_used:,}"
        + ("  (sandbox credits, not your account's)" if result.synthetic else ""),
        f"time          {format_duration(result.elapsed_s)}",
        f"job           {result.job_id}",
        f"output        {result.output}",
    ]
    if result.synthetic:
        lines.append(
            "SYNTHETIC RESULTS from the dropq sandbox: set DROPCONTACT_API_KEY and use `dropq enrich` for real ones."
        )
    return "\n".join(lines)


@click.command("demo")
@click.option("-o", "--output", default=DEFAULT_DEMO_OUTPUT, show_default=True, help="where to write the result")
@click.option("--api", is_flag=True, help="enrich the sample through DROPCONTACT_API_KEY instead of the sandbox")
@click.option("-q", "--quiet", is_flag=True, help="no progress line")
def demo_command(output: str, api: bool, quiet: bool) -> None:
    """Enrich the sample contacts end to end on this machine (sandbox, private Redis, local worker)."""
    sample = sample_path()
    if not sample.exists():
        raise CliError(f"the sample file {sample} is missing: reinstall dropq", USER_ERROR)
    request = EnrichRequest(
        input_path=str(sample), output=output, siren=True, local=True, force_sandbox=not api, quiet=quiet
    )
    try:
        with interrupts_as_exceptions():
            result = run_enrich(request)
    except KeyboardInterrupt as interrupt:
        raise click.exceptions.Exit(exit_status_of(interrupt)) from None
    if result is not None:
        click.echo(format_summary(result))
