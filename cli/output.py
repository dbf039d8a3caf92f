"""The last step of ``dropq enrich``: the input read again, each row written with its outcome.

Rows are joined to the job's outcomes by job index (the n-th readable row is record n), read in index
order from the spool beside the input, so that neither side is held in memory: 4 bytes a row (its line,
for reasons that name other records) is all that grows. A row with no outcome is written ``failed``
with the reason, an unreadable row ``rejected`` with why: the output has every row of the input.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dropq.cli.files import InputFile, OutputFile
from dropq.cli.progress import format_duration
from dropq.cli.spool import OutcomeSpool
from dropq.dropcontact.tabular import reason_with_lines
from dropq.workers.jobs.ledger import JobStatus

__all__ = ["EnrichResult", "write_rows", "summary_lines"]

NO_OUTCOME = "no outcome came back from the pipeline"


@dataclass
class EnrichResult:
    """What a finished run produced."""

    job_id: str
    output: str
    rows: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    unreadable: int = 0
    credits_used: int = 0
    elapsed_s: float = 0.0
    synthetic: bool = False
    status: JobStatus | None = None


def write_rows(source: InputFile, spool: OutcomeSpool | None, out: OutputFile, result: EnrichResult) -> None:
    """Write every row of ``source`` with its outcome to ``out`` and commit it (discarded on any error).

    Counts the rows by status, and the unreadable ones, in ``result``.
    """
    # The line of each job index, for reasons that name other records (4 bytes a row).
    lines = array("L")
    spooled = spool.in_order() if spool is not None else iter(())
    current = next(spooled, None)

    def line_of(index: int) -> int | None:
        return lines[index] if 0 <= index < len(lines) else None

    try:
        for row in source.rows():
            if not row.is_readable:
                outcome: dict[str, Any] = {"status": "rejected", "reason": row.error}
                result.unreadable += 1
            else:
                index = len(lines)
                lines.append(row.line)
                while current is not None and current.index < index:
                    current = next(spooled, None)
                if current is not None and current.index == index:
                    outcome = current.as_outcome()
                    reason = current.reason
                else:
                    outcome = {"index": index, "status": "failed"}
                    reason = NO_OUTCOME
                if reason is not None:
                    # The pipeline names records by job index ("record 12: ..."); a person reads lines.
                    named = reason.startswith("record ")
                    outcome["reason"] = reason_with_lines(reason, line_of) if named else f"line {row.line}: {reason}"
            out.write(row, outcome)
            result.counts[str(outcome["status"])] += 1
        out.commit()
    except BaseException:
        out.discard()
        raise
    result.rows = out.rows_written


def summary_lines(result: EnrichResult, display_input: str) -> list[str]:
    """What the command says when the output is written."""
    if not result.rows:
        return [
            f"done: {display_input} has no rows after its header, so nothing was sent and no credit used; the "
            f"output ({result.output}) holds the header only"
        ]
    counts = ", ".join(f"{status.replace('_', ' ')} {n:,}" for status, n in sorted(result.counts.items()))
    lines = [
        f"done in {format_duration(result.elapsed_s)}: {result.rows:,} rows ({counts}); "
        f"{result.credits_used:,} credits used; output: {result.output}"
    ]
    if result.status is not None and result.status.cached:
        lines.append(
            f"{result.status.cached:,} rows answered from the result cache: "
            f"{result.status.credits_saved:,} credits saved"
        )
    if result.synthetic:
        lines.append("(synthetic results from the dropq sandbox, not from Dropcontact)")
    return lines
