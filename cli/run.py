"""One run of ``dropq enrich``: a CSV or JSON Lines file in, one job, the enriched file out.

The run, in order:

1. Checks: the input opens, ``--map`` is valid, then (without ``--local``)
   Redis answers, the token is accepted by the free credit endpoint and a
   worker answers a ping — all before anything is submitted. ``--local``
   brings up what is missing instead (``cli.local.LocalStack``).
2. Send: the input is read as a stream; each readable row becomes a contact of
   API fields only, sent in parts of ``--part-size`` to ``dropq.enrich`` with
   its offset in the job (one part read ahead, to know which is final). At most
   ``--max-in-flight`` records wait in the pipeline at once, so Redis holds a
   window of the input, not all of it. Rows that cannot be read are not sent.
3. Wait: the job's outcome stream is moved into a local SQLite spool (and
   deleted from Redis) while a progress line shows the ledger.
4. Write: the input is read again the same way; each row gets its outcome by
   job index (unreadable rows: ``rejected`` with the line and why): ``cli.output``.

Ctrl-C detaches without cancelling; the same command with ``--job-id`` attaches
again (parts already received are not re-sent; the spool keeps what was read).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

import click
import redis
from celery import Celery

from dropq.cli.checks import (
    USER_ERROR,
    CliError,
    check_redis,
    check_token,
    check_workers,
    safe_url,
    settings_or_exit,
)
from dropq.cli.files import InputFile, InputRow, OutputFile, copy_stdin_to_temp, format_for_path
from dropq.cli.local import LocalStack, client_app
from dropq.cli.output import EnrichResult, summary_lines, write_rows
from dropq.cli.progress import JobProgress, RateMeter
from dropq.cli.spool import OutcomeSpool, StreamCollector, private_folder, spool_path_for
from dropq.config.celeryconfig import STAGES, queue_name
from dropq.config.settings import Settings
from dropq.dropcontact.records import INPUT_FIELDS
from dropq.dropcontact.tabular import (
    ColumnMappingError,
    contact_from_cells,
    contact_from_object,
    map_columns,
    parse_map_overrides,
)
from dropq.workers import keys
from dropq.workers.destinations.files import file_stem
from dropq.workers.jobs.ledger import JobLedger, JobStatus
from dropq.workers.jobs.options import is_valid_job_id

__all__ = ["EnrichRequest", "run_enrich", "new_job_id", "synthetic_banner"]

# Contacts per dropq.enrich message: small messages, few of them.
DEFAULT_PART_SIZE = 1000
# Records sent but not yet accounted for; bounds what Redis holds for this job (about 1 kB each).
DEFAULT_MAX_IN_FLIGHT = 50_000
# How long a running worker has to answer the pre-flight ping.
DEFAULT_PING_TIMEOUT_S = 3.0
# The progress line's refresh period, and how often the stream is drained.
REFRESH_S = 0.5
# Unreadable rows are each announced on stderr up to this many; the output has them all.
MAX_ROW_WARNINGS = 20
# JSON Lines: the objects whose keys are checked for an API field before sending.
_KEYS_SAMPLE_ROWS = 1000
# No progress for this long: check that a worker still answers, and say so when none does.
STALL_CHECK_S = 30.0

_RULE = "=" * 80


def synthetic_banner(*, key_is_set: bool) -> str:
    """The warning of a run on the sandbox: why it is the sandbox (no key, or ``dropq demo`` on purpose)."""
    if key_is_set:
        why = [
            "  SYNTHETIC RESULTS: dropq demo runs on the dropq sandbox, a local emulator of the",
            "  Dropcontact API, even though DROPCONTACT_API_KEY is set: the sample's people are",
            "  made up, and real credits should not go on them. Every email, phone and company",
            "  detail in the output is made up. `dropq demo --api` uses your key (and credits).",
        ]
    else:
        why = [
            "  SYNTHETIC RESULTS: DROPCONTACT_API_KEY is not set, so this run uses the dropq",
            "  sandbox, a local emulator of the Dropcontact API. Every email, phone and company",
            "  detail in the output is made up. Set DROPCONTACT_API_KEY for real enrichment.",
        ]
    return "\n".join([_RULE, *why, _RULE])


@dataclass(frozen=True, slots=True)
class EnrichRequest:
    """What the person asked for (the command's options)."""

    input_path: str
    output: str | None = None
    out_format: str | None = None
    input_format: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    mappings: tuple[str, ...] = ()
    siren: bool = False
    language: str | None = None
    cache: str = "use"
    priority: str = "auto"
    destinations: tuple[str, ...] = ()
    raw_csv: bool = False
    job_id: str | None = None
    local: bool = False
    force_sandbox: bool = False
    wait: bool = True
    part_size: int = DEFAULT_PART_SIZE
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    ping_timeout_s: float = DEFAULT_PING_TIMEOUT_S
    quiet: bool = False


def new_job_id(now: datetime) -> str:
    """``enrich-YYYYMMDD-HHMMSS-xxxx``: readable, sortable, and unique enough for one person."""
    return f"enrich-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _err(text: str) -> None:
    click.echo(text, err=True)


def _delimiter(given: str) -> str:
    # A shell makes typing a tab awkward: `tab` and a literal backslash-t both mean one.
    return "\t" if given.lower() in ("tab", "\\t") else given


@dataclass
class _Prepared:
    source: InputFile
    overrides: dict[str, str | None]
    job_id: str
    output: Path | None
    out_format: str
    display_input: str


def _prepare(req: EnrichRequest, input_path: Path) -> _Prepared:
    try:
        delimiter = _delimiter(req.delimiter) if req.delimiter else None
        source = InputFile(input_path, fmt=req.input_format, encoding=req.encoding, delimiter=delimiter)
        overrides = parse_map_overrides(req.mappings)
    except ColumnMappingError as exc:
        raise CliError(str(exc), USER_ERROR) from exc
    if req.job_id is not None and not is_valid_job_id(req.job_id):
        raise CliError(f"--job-id {req.job_id!r}: use 1 to 128 letters, digits, '.', '_', ':' or '-'", USER_ERROR)
    if req.delimiter is not None and len(_delimiter(req.delimiter)) != 1:
        raise CliError(f"--delimiter {req.delimiter!r}: one character (or `tab`)", USER_ERROR)
    job_id = req.job_id or new_job_id(datetime.now())
    output: Path | None
    if req.output == "-" or (req.output is None and req.input_path == "-"):
        output = None
    elif req.output is not None:
        output = Path(req.output)
    else:
        suffix = ".jsonl" if (req.out_format or source.format) == "jsonl" else ".csv"
        output = input_path.with_name(f"{input_path.stem}.enriched{suffix}")
    out_format = req.out_format or (format_for_path(str(output), default=source.format) if output else source.format)
    display = "-" if req.input_path == "-" else req.input_path
    return _Prepared(source, overrides, job_id, output, out_format, display)


def run_enrich(req: EnrichRequest, settings: Settings | None = None) -> EnrichResult | None:
    """Run one enrich job as the command does; None when ``--no-wait`` returned after sending.

    Raises:
        CliError: a check failed (exit status in the error).
    """
    settings = settings or settings_or_exit()
    temp_input = copy_stdin_to_temp() if req.input_path == "-" else None
    try:
        prepared = _prepare(req, temp_input or Path(req.input_path))
        if not req.local:
            check_redis(settings, local_hint=True)
            check_token(settings)
            app = client_app(settings)
            try:
                check_workers(app, settings, req.ping_timeout_s)
                return _Run(req, prepared, settings, app, synthetic=False, owns_stack=False).execute()
            finally:
                app.close()
        use_sandbox = req.force_sandbox or not settings.api_key
        if not use_sandbox:
            check_token(settings)
        else:
            _err(synthetic_banner(key_is_set=bool(settings.api_key)))
        # Against the real API a private Redis keeps its data in a folder of the job's, so that an interrupted
        # run resumes without paying twice; the sandbox's batches die with it, so there is nothing to keep.
        redis_dir = None if use_sandbox else private_folder() / f"redis-{file_stem(prepared.job_id)}"
        with LocalStack(settings, echo=_err, sandbox=use_sandbox, ping_timeout_s=min(req.ping_timeout_s, 1.0),
                        redis_dir=redis_dir) as stack:  # fmt: skip
            run = _Run(req, prepared, stack.settings, stack.client_app(), synthetic=use_sandbox,
                       owns_stack=bool(stack.started), owns_redis=stack.owns_redis,
                       kept_redis_dir=redis_dir if stack.owns_redis else None)  # fmt: skip
            return run.execute()
    finally:
        if temp_input is not None:
            temp_input.unlink(missing_ok=True)


class _Run:
    """One job from sending to the written output."""

    def __init__(
        self, req: EnrichRequest, prepared: _Prepared, settings: Settings, app: Celery, *, synthetic: bool,
        owns_stack: bool, owns_redis: bool = False, kept_redis_dir: Path | None = None,
    ) -> None:  # fmt: skip
        self.req = req
        self.p = prepared
        self.settings = settings
        self.app = app
        self.synthetic = synthetic
        self.owns_stack = owns_stack
        self.owns_redis = owns_redis
        self.kept_redis_dir = kept_redis_dir
        self.redis = redis.Redis.from_url(settings.redis_url, decode_responses=True)
        self.ledger = JobLedger(self.redis, settings.job_ttl_s)
        self.progress = JobProgress(enabled=not req.quiet)
        self.rate = RateMeter()
        self.sent = 0
        self.total: int | None = None
        self.status: JobStatus | None = None
        self.started_s = time.monotonic()
        self.warnings = 0
        self.spool: OutcomeSpool | None = None
        self.collector: StreamCollector | None = None

    def execute(self) -> EnrichResult | None:
        job = self.p.job_id
        _err(f"job {job}: {self.p.display_input} -> {self._output_name()}")
        try:
            if self.req.wait:
                self.spool = OutcomeSpool(spool_path_for(job))
                self.collector = StreamCollector(self.redis, job, self.spool)
            existing = self.ledger.read(job)
            if existing is not None and existing.is_finished:
                _err(f"job {job} already finished: writing the output from what it delivered")
                self.total = existing.received
            else:
                self._warn_if_no_column_is_sent()
                self._send(resuming=existing is not None)
            if not self.req.wait:
                self.progress.end()
                click.echo(job)
                _err(f"sent {self.sent:,} records; watch with `dropq status {job} --wait`; write the file with "
                     f"`{self._reattach_command()}`")  # fmt: skip
                return None
            if self.total:
                self._wait()
            return self._write_output()
        except KeyboardInterrupt:
            # After SIGHUP the terminal may be gone: a message that cannot be written must not stop the clean-up.
            with contextlib.suppress(OSError):
                self.progress.end()
                self._print_detached()
            raise
        finally:
            with contextlib.suppress(OSError):
                self.progress.end()  # a terminal gets its cursor back whatever ended the run
            if self.spool is not None:
                self.spool.close()
            self.redis.close()

    # -- sending -----------------------------------------------------------------------------------------------

    def _contacts(self) -> Iterator[dict[str, Any]]:
        source = self.p.source
        mapping = map_columns(source.columns, self.p.overrides) if source.format == "csv" else None
        for row in source.rows():
            if not row.is_readable:
                self._warn_unreadable(row)
                continue
            if mapping is not None:
                yield contact_from_cells(row.cells or [], mapping)
            else:
                yield contact_from_object(row.obj or {}, self.p.overrides)

    def _warn_if_no_column_is_sent(self) -> None:
        """Before anything is sent: say so when no column is an API field (every row would be rejected)."""
        source = self.p.source
        if source.format == "csv":
            columns = source.columns
        else:  # the keys of the first objects stand for the file's
            seen: dict[str, None] = {}
            for row in islice(source.rows(), _KEYS_SAMPLE_ROWS):
                seen.update(dict.fromkeys(row.obj or {}))
            columns = list(seen)
        if not columns or map_columns(columns, self.p.overrides).sent_columns:
            return
        shown = ", ".join(repr(c) for c in columns[:8]) + (", ..." if len(columns) > 8 else "")
        example = " ".join(f'--map "{c}={f}"' for c, f in zip(columns, ("first_name", "company"), strict=False))
        self.progress.note(
            f"warning: no column of {self.p.display_input} is an API field ({shown}), so nothing can be sent and "
            f"every row will come back rejected. Name the fields with --map COLUMN=FIELD, e.g. {example} "
            f"(fields: {', '.join(sorted(INPUT_FIELDS))})"
        )

    def _warn_unreadable(self, row: InputRow) -> None:
        self.warnings += 1
        if self.warnings <= MAX_ROW_WARNINGS:
            self.progress.note(f"warning: {row.error} (not sent; the output keeps the row as rejected)")
        elif self.warnings == MAX_ROW_WARNINGS + 1:
            self.progress.note("warning: more unreadable rows; the output's reason column names each one")

    def _parts(self) -> Iterator[tuple[int, list[dict[str, Any]], bool]]:
        size = self.req.part_size
        offset, current = 0, []
        ahead: tuple[int, list[dict[str, Any]]] | None = None
        for contact in self._contacts():
            current.append(contact)
            if len(current) == size:
                if ahead is not None:
                    yield (*ahead, False)
                ahead, offset, current = (offset, current), offset + size, []
        if current:
            if ahead is not None:
                yield (*ahead, False)
            ahead = (offset, current)
        if ahead is not None:
            yield (*ahead, True)

    def _send(self, *, resuming: bool) -> None:
        job = self.p.job_id
        destinations = list(dict.fromkeys(["stream", *self.req.destinations]))
        if resuming:
            _err(f"job {job} exists: attaching to it (parts it already has are not sent again)")
        for offset, contacts, final in self._parts():
            if not (resuming and self.redis.sismember(keys.job_parts_key(job), str(offset))):
                kwargs = {
                    "contacts": contacts, "job_id": job, "offset": offset, "final": final,
                    "destinations": destinations, "siren": self.req.siren, "language": self.req.language,
                    "cache": self.req.cache, "priority": self.req.priority,
                }  # fmt: skip
                self.app.send_task("dropq.enrich", kwargs=kwargs, queue=queue_name(self.settings, STAGES[0]))
            self.sent += len(contacts)
            if final:
                self.total = self.sent
            if self.req.wait:
                self._tick(pause=False)
                while self.sent - (self.status.accounted if self.status else 0) > self.req.max_in_flight:
                    self._tick()
        if self.total is None:
            self.total = self.sent

    # -- waiting -----------------------------------------------------------------------------------------------

    def _tick(self, *, pause: bool = True) -> None:
        if pause:
            time.sleep(REFRESH_S)
        if self.collector is not None:
            self.collector.drain()
        self.status = self.ledger.read(self.p.job_id)
        rate = self.rate.rate(self.status.accounted if self.status else 0, time.monotonic())
        self.progress.show(self.status, sent=self.sent, total=self.total, rate=rate)

    def _wait(self) -> None:
        last_accounted, last_change_s, warned = -1, time.monotonic(), False
        while True:
            # Always paced, also before the job is accepted: no busy loop on Redis while a worker is busy.
            self._tick()
            status = self.status
            if status is None:
                if time.monotonic() - last_change_s > STALL_CHECK_S:
                    self._check_stalled(warned)
                    warned = True
                continue
            if status.is_finished:
                if self.collector is not None:
                    self.collector.drain()
                self.progress.show(status, sent=self.sent, total=self.total, rate=None)
                self.progress.end(final=True)
                return
            now = time.monotonic()
            if status.accounted != last_accounted:
                last_accounted, last_change_s, warned = status.accounted, now, False
            elif now - last_change_s > STALL_CHECK_S and not warned:
                self._check_stalled(warned)
                warned = True

    def _check_stalled(self, warned: bool) -> None:
        if warned:
            return
        try:
            check_workers(self.app, self.settings, self.req.ping_timeout_s)
        except CliError as exc:
            self.progress.note(f"warning: no progress for {STALL_CHECK_S:.0f}s and {exc.format_message()}; the job "
                               "resumes when one does")  # fmt: skip

    # -- output ------------------------------------------------------------------------------------------------

    def _write_output(self) -> EnrichResult:
        source = self.p.source
        columns = source.columns if source.format == "csv" else source.jsonl_columns()
        cached = bool(self.settings.cache_url) and self.req.cache != "off"
        out = OutputFile(self.p.output, self.p.out_format, columns, siren=self.req.siren, job_id=self.p.job_id,
                         delimiter=source.delimiter or ",", escape_formulas=not self.req.raw_csv,
                         source=cached)  # fmt: skip
        result = EnrichResult(job_id=self.p.job_id, output=self._output_name(), synthetic=self.synthetic)
        write_rows(source, self.spool, out, result)
        final = self.ledger.read(self.p.job_id)
        result.status = final
        result.credits_used = final.credits_used if final else 0
        result.sent = final.received if final else self.sent
        result.elapsed_s = time.monotonic() - self.started_s
        if self.spool is not None:
            self.spool.remove()
            self.spool = None
        for line in summary_lines(result, self.p.display_input):
            _err(line)
        return result

    # -- messages ----------------------------------------------------------------------------------------------

    def _output_name(self) -> str:
        return "standard output" if self.p.output is None else str(self.p.output)

    def _reattach_command(self) -> str:
        parts = ["dropq", "enrich", self.req.input_path]
        if self.p.output is not None:
            parts += ["-o", str(self.p.output)]
        if self.req.siren:
            parts.append("--siren")
        if self.req.local:
            parts.append("--local")
        parts += ["--job-id", self.p.job_id]
        return " ".join(parts)

    def _print_detached(self) -> None:
        job = self.p.job_id
        if self.owns_stack:
            _err("\n" + self._local_stop_message())
            return
        _err(f"\ndetached: job {job} goes on without this command (nothing was cancelled).\n"
             f"  watch it:           dropq status {job} --wait\n"
             f"  write the output:   {self._reattach_command()}")  # fmt: skip
        if self.req.input_path == "-":
            _err("  (the input came from standard input: save it to a file to attach again)")

    def _local_stop_message(self) -> str:
        """What is true after an interrupted ``--local`` run: whether the same command goes on or starts over."""
        job = self.p.job_id
        if self.synthetic:
            # The sandbox held the batches in flight and is gone: a new one knows none of them.
            again = ["dropq", "enrich", self.req.input_path]
            if self.p.output is not None:
                again += ["-o", str(self.p.output)]
            again += [*(["--siren"] if self.req.siren else []), "--local"]
            gone = "its sandbox and private Redis" if self.owns_redis else "its sandbox"
            return (
                f"stopped: job {job} ended with this command ({gone} stopped with it; nothing of it can be resumed).\n"
                f"  start again: {' '.join(again)}\n"
                "  (a new job from the first row; sandbox results are synthetic and cost no credits)"
            )
        if self.kept_redis_dir is not None:
            note = (
                "\n  (the input came from standard input: save it to a file to go on)"
                if self.req.input_path == "-"
                else ""
            )
            return (
                f"stopped: job {job} stopped with this command; its private Redis keeps the job in "
                f"{self.kept_redis_dir}.\n"
                f"  go on: {self._reattach_command()}\n"
                "  (rows already sent are not sent or charged again; the folder goes once the output is written)"
                f"{note}"
            )
        return (f"stopped: the local workers stop with this command; job {job} stays in Redis at "
                f"{safe_url(self.settings.redis_url)}.\n"
                f"  go on: {self._reattach_command()}  (rows already sent are not sent or charged again)")  # fmt: skip
