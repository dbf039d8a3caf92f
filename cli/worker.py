"""``dropq worker``: one ``celery -A dropq worker`` per core, each a pool of threads; other options go to Celery.

The queues need no ``-Q``: the app declares them, and a plain Celery worker consumes exactly those.
A stage mostly waits on the network (the API answers in 250 ms to 1 s), so a worker process runs
a pool of threads (``worker_pool = "threads"`` in the app's configuration); one process per core
spreads the CPU the stages do need past the interpreter's lock. With one process, ``dropq worker``
becomes ``celery worker`` itself; with several, it starts them (``dropq1@host``, ``dropq2@host``...),
passes on SIGTERM, SIGINT and SIGQUIT, and when one of them exits it stops the others and exits
with that code, so a process manager restarts the whole group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType

import click

from dropq.cli.checks import USER_ERROR, CliError, settings_or_exit
from dropq.config.celeryconfig import DEFAULT_WORKER_THREADS

__all__ = ["worker_command"]

# The signals a worker group passes on to each of its processes (Celery's warm and cold shutdowns).
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
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
@click.option("-l", "--loglevel", default="info", show_default=True, help="Celery's log level")
@click.pass_context
def worker_command(ctx: click.Context, processes: int | None, concurrency: int | None, loglevel: str) -> None:
    """Run workers on every dropq queue; other options (e.g. -P, --autoscale, -n with -p 1) go to `celery worker`."""
    settings_or_exit()
    count = processes or os.cpu_count() or 1
    extra = list(ctx.args)
    args = [sys.executable, "-m", "celery", "-A", "dropq", "worker", "-l", loglevel]
    if concurrency:
        args += ["-c", str(concurrency)]
    if count == 1:
        os.execvp(sys.executable, [*args, *extra])
    if any(arg in ("-n", "--hostname") or arg.startswith("--hostname=") for arg in extra):
        raise CliError("-n/--hostname names one process: pass it with --processes 1", USER_ERROR)
    sys.exit(_run_group([[*args, "-n", f"dropq{index}@%h", *extra] for index in range(1, count + 1)]))


def _run_group(commands: list[list[str]]) -> int:
    """Run the processes until one exits; returns the exit code to leave with."""
    children: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in _FORWARDED:
        signal.signal(signum, forward)
    # Own sessions: a terminal's Ctrl-C reaches the group once, through forward(), never twice.
    children.extend(subprocess.Popen(command, start_new_session=True) for command in commands)
    pid, status = _wait_any()
    code = os.waitstatus_to_exitcode(status)
    for child in children:
        if child.pid == pid:
            child.returncode = code
        elif child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=_STOP_OTHERS_S)
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
