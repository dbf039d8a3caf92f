"""``dropq worker``: one ``celery -A dropq worker`` per core, each a pool of threads; other options go to Celery.

The queues need no ``-Q``: the app declares them, and a plain Celery worker consumes exactly those.
A stage mostly waits on the network (the API answers in 250 ms to 1 s), so a worker process runs
a pool of threads (``worker_pool = "threads"`` in the app's configuration); one process per core
spreads the CPU the stages do need past the interpreter's lock. With one process, ``dropq worker``
becomes ``celery worker`` itself; with several, it starts them (``dropq1@host``, ``dropq2@host``...),
passes on SIGTERM, SIGINT and SIGQUIT (and SIGHUP, a closed terminal, as SIGTERM), and when one of
them exits it stops the others and exits with that code, so a process manager restarts the whole
group. On Linux each process also gets SIGTERM if the group's own process dies (even by SIGKILL):
no worker is left consuming unsupervised.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import FrameType

import click

from dropq.cli.checks import USER_ERROR, CliError, settings_or_exit
from dropq.config.celeryconfig import DEFAULT_WORKER_THREADS
from dropq.workers.children import die_with_parent

__all__ = ["worker_command"]

# The signals a worker group passes on to each of its processes (Celery's warm and cold shutdowns),
# and what it sends for each: a closed terminal (SIGHUP) is a warm shutdown.
_FORWARDED = {signal.SIGTERM: signal.SIGTERM, signal.SIGINT: signal.SIGINT, signal.SIGQUIT: signal.SIGQUIT,
              signal.SIGHUP: signal.SIGTERM}  # fmt: skip
# The levels dropq's logging knows (DROPQ_LOG_LEVEL), and the variable that hands -l to the processes.
_LOG_LEVELS = ("debug", "info", "warning", "error")
_LOG_LEVEL_VARIABLE = "DROPQ_LOG_LEVEL"
# Options that name one process (several would clash), and files that need a per-process %n or %i.
_ONE_PROCESS_OPTIONS = ("-n", "--hostname", "-D", "--detach")
_PER_PROCESS_FILES = ("--pidfile", "--logfile", "-f")
# How long the group waits for the others to finish their tasks once one process has exited.
_STOP_OTHERS_S = 60.0


@click.command("worker", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option(
    "-p", "--processes", type=click.IntRange(min=1), default=None, help="worker processes (default: one per core)"
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help=f"threads per process: requests in flight (default: {DEFAULT_WORKER_THREADS})",
)
@click.option(
    "-l",
    "--loglevel",
    type=click.Choice(_LOG_LEVELS, case_sensitive=False),
    default=None,
    help="log level of every worker process (default: DROPQ_LOG_LEVEL, info)",
)
@click.pass_context
def worker_command(ctx: click.Context, processes: int | None, concurrency: int | None, loglevel: str | None) -> None:
    """Run workers on every dropq queue; other options (e.g. -P, --autoscale, -n with -p 1) go to `celery worker`."""
    settings = settings_or_exit()
    count = processes or _usable_cores()
    extra = list(ctx.args)
    level = (loglevel or settings.log_level).lower()
    args = [sys.executable, "-m", "celery", "-A", "dropq", "worker", "-l", level]
    if concurrency:
        args += ["-c", str(concurrency)]
    # dropq's logging reads its level from the settings (Celery's -l alone would not reach it).
    os.environ[_LOG_LEVEL_VARIABLE] = level
    if count == 1:
        os.execvp(sys.executable, [*args, *extra])
    _check_group_options(extra)
    prefix = settings.key_prefix
    sys.exit(_run_group([[*args, "-n", f"{prefix}{index}@%h", *extra] for index in range(1, count + 1)]))


def _check_group_options(extra: list[str]) -> None:
    for position, arg in enumerate(extra):
        name = arg.split("=", 1)[0]
        if name in _ONE_PROCESS_OPTIONS or (arg.startswith("-n") and not arg.startswith("--")):
            raise CliError(f"{name} applies to one process: pass it with --processes 1", USER_ERROR)
        if name in _PER_PROCESS_FILES:
            value = arg.split("=", 1)[1] if "=" in arg else (extra[position + 1] if position + 1 < len(extra) else "")
            if not any(code in value for code in ("%n", "%i", "%I")):
                raise CliError(f"{name} {value!r} would be shared by the processes: put %n in it", USER_ERROR)


def _usable_cores() -> int:
    """The cores this process may run on (a container's CPU set), not the host's."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _run_group(commands: list[list[str]]) -> int:
    """Run the processes until one exits; returns the exit code to leave with."""
    children: list[subprocess.Popen[bytes]] = []

    stopping: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(_FORWARDED[signal.Signals(signum)])

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    try:
        for command in commands:
            # Own sessions: a terminal's Ctrl-C reaches the group once, through forward(), never twice.
            children.append(subprocess.Popen(command, start_new_session=True, preexec_fn=die_with_parent))
            if stopping:  # a signal came while the group was starting: the late ones get it too
                children[-1].send_signal(_FORWARDED[signal.Signals(stopping[-1])])
    except OSError:
        for child in children:
            child.terminate()
        raise
    pid, status = _wait_any()
    code = os.waitstatus_to_exitcode(status)
    for child in children:
        if child.pid == pid:
            child.returncode = code
        elif child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + _STOP_OTHERS_S
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return code if code >= 0 else 128 - code


def _wait_any() -> tuple[int, int]:
    while True:
        try:
            return os.wait()
        except InterruptedError:  # a forwarded signal; PEP 475 retries, older paths may not
            continue
