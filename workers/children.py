"""Child processes that end with the process that started them (Linux's ``PR_SET_PDEATHSIG``).

A ``dropq worker`` group, or a ``dropq enrich --local`` run, starts processes of its own (workers,
a private redis-server, the sandbox). When it dies without cleaning up (SIGKILL, an OOM kill),
each child gets SIGTERM from the kernel instead of being re-parented to PID 1 and left running.
The signal follows the *thread* that started the child: start them from the main thread.
Elsewhere than Linux this is a no-op.
"""

from __future__ import annotations

import signal

__all__ = ["die_with_parent"]

# prctl(PR_SET_PDEATHSIG): the signal a child gets when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """For ``subprocess.Popen(preexec_fn=...)``: in the child, before exec, ask for SIGTERM when the parent dies."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        pass
