"""SIGTERM and SIGHUP end a command the way Ctrl-C does: one exception unwinds it, so every ``finally`` runs.

Python turns SIGINT into ``KeyboardInterrupt``; SIGTERM and SIGHUP would kill the process
outright and leave what ``--local`` started (sandbox, private Redis, workers) running,
re-parented to PID 1. ``interrupts_as_exceptions`` raises ``_Interrupted`` (a
``KeyboardInterrupt``) for them instead, once: a second signal while the first unwinds is
ignored (Ctrl-C included), so the clean-up it triggered is not cut short. Callers catch
``KeyboardInterrupt``; the class is private because nothing else needs its name. The exit
status is 128 + the signal number (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP), as a
shell reports a killed command.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

__all__ = ["interrupts_as_exceptions", "exit_status_of"]

# The signals that end a run like Ctrl-C (SIGINT itself still raises a plain KeyboardInterrupt).
_HANDLED = (signal.SIGTERM, signal.SIGHUP)


class _Interrupted(KeyboardInterrupt):
    """A SIGTERM or SIGHUP, raised where the main thread was, to unwind like Ctrl-C.

    Args:
        signum: the signal received.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def exit_status_of(interrupt: KeyboardInterrupt) -> int:
    """128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    signum = interrupt.signum if isinstance(interrupt, _Interrupted) else int(signal.SIGINT)
    return 128 + signum


@contextlib.contextmanager
def interrupts_as_exceptions() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise ``_Interrupted``; any signal after the first is ignored."""
    received: list[int] = []

    def handle(signum: int, _frame: FrameType | None) -> None:
        if received:  # already unwinding: let the clean-up finish
            return
        received.append(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise _Interrupted(signum)

    handled = list(_HANDLED)
    # SIGINT only where Python would raise KeyboardInterrupt (a background job ignores it: so do we).
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        handled.append(signal.SIGINT)
    previous = {signum: signal.signal(signum, handle) for signum in handled}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
