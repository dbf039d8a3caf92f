"""What ``dropq enrich`` tells a script: its exit status, and the ``--summary-json`` file.

Exit statuses (also in ``dropq enrich --help`` and the README):

* 0: every row came back, none in a status named by ``--fail-on``;
* 3: the run finished, and some rows ended in a status named by ``--fail-on``
  (``failed`` by default; any of ``rejected``, ``failed``, ``duplicate``, ``not_found``);
* 1: the run itself failed (Redis, workers or the API not answering, a local stack that did not start);
* 2: usage or configuration (an option, the input file, a variable, a refused token);
* 130: Ctrl-C; 143 and 129 for SIGTERM and SIGHUP (128 + the signal), the job left as it was.

The pure part (parsing ``--fail-on``, the status, the summary's shape) is here; ``enrich.py``
writes the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "SOME_ROWS_FAILED",
    "FAIL_ON_STATUSES",
    "DEFAULT_FAIL_ON",
    "parse_fail_on",
    "exit_status_for",
    "summary_of",
    "write_summary",
]

# Exit status of a finished run with rows in a --fail-on status.
SOME_ROWS_FAILED = 3
# The row statuses --fail-on may name (``enriched`` never fails a run).
FAIL_ON_STATUSES = ("rejected", "failed", "duplicate", "not_found")
# What fails a run unless --fail-on says otherwise: rows that did not come back.
DEFAULT_FAIL_ON = "failed"
# The summary's count keys, by row status (``duplicates`` as the ledger spells it).
_COUNT_KEYS = {"enriched": "enriched", "not_found": "not_found", "rejected": "rejected",
               "duplicate": "duplicates", "failed": "failed"}  # fmt: skip


def parse_fail_on(text: str) -> frozenset[str]:
    """The statuses of a ``--fail-on`` comma list (``""`` or ``none``: no status fails the run).

    Raises:
        ValueError: a name that is not one of ``FAIL_ON_STATUSES``, with the list.
    """
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if names == ["none"]:
        return frozenset()
    unknown = [name for name in names if name not in FAIL_ON_STATUSES]
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not a row status; use a comma list of {', '.join(FAIL_ON_STATUSES)} "
                         "(or none)")  # fmt: skip
    return frozenset(names)


def exit_status_for(counts: Mapping[str, int], fail_on: Iterable[str]) -> int:
    """0, or ``SOME_ROWS_FAILED`` when any row ended in a status of ``fail_on``."""
    return SOME_ROWS_FAILED if any(counts.get(status, 0) for status in fail_on) else 0


def summary_of(
    *,
    state: str,
    exit_status: int,
    job_id: str | None,
    output: str | None,
    counts: Mapping[str, int] | None = None,
    sent: int | None = None,
    unreadable: int = 0,
    credits_used: int | None = None,
    duration_s: float,
    synthetic: bool = False,
    fail_on: Iterable[str] = (),
    error: str | None = None,
) -> dict[str, Any]:
    """The ``--summary-json`` object.

    Args:
        state: ``finished`` (the output is written), ``sent`` (``--no-wait``), ``interrupted`` or ``error``.
        exit_status: the command's exit status.
        job_id: the job, when one was started.
        output: the output's path (``-`` for standard output).
        counts: rows of the output by status (None when there is no output).
        sent: records sent to the pipeline (the readable rows).
        unreadable: rows that could not be read (counted in ``rejected``, never sent).
        credits_used: credits the job used, from its ledger.
        duration_s: the run's wall time.
        synthetic: whether the results came from the sandbox.
        fail_on: the statuses that fail the run.
        error: the message of a run that did not finish.

    Returns:
        ``received`` is every input row; it equals the sum of the five statuses once finished.
    """
    summary: dict[str, Any] = {"job_id": job_id, "state": state, "exit_status": exit_status}
    if counts is not None:
        summary["received"] = sum(counts.values())
        summary.update({key: int(counts.get(status, 0)) for status, key in _COUNT_KEYS.items()})
        summary["unreadable"] = unreadable
    summary.update({"sent": sent, "credits_used": credits_used, "duration_s": round(duration_s, 3),
                    "output": output, "synthetic": synthetic, "fail_on": sorted(fail_on)})  # fmt: skip
    if error is not None:
        summary["error"] = error
    return summary


def write_summary(path: Path, summary: Mapping[str, Any]) -> None:
    """Write the summary as one JSON object and a newline, atomically (a reader never sees half of it)."""
    directory = path.parent if str(path.parent) else Path()
    directory.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (renamed below, not closed by a with)
        "w", encoding="utf-8", dir=directory, prefix=f".{path.name}.", suffix=".partial", delete=False
    )
    try:
        with handle:
            handle.write(json.dumps(summary, ensure_ascii=False) + "\n")
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
