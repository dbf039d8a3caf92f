"""One running sandbox: its state behind a lock, its clock and its webhook pusher.

The app's handlers and the pusher thread share this object; every use of the
state happens under ``lock``, and every critical section is short (the one
long step, enriching a finished batch, happens once per batch).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from dropq.dropcontact.sandbox.config import SandboxConfig, SandboxConfigError
from dropq.dropcontact.sandbox.state import SandboxState
from dropq.dropcontact.sandbox.webhooks import WebhookPusher

__all__ = ["SandboxRuntime"]

# Bind address and port are fixed once the server listens.
_FIXED_KNOBS = ("host", "port")


class SandboxRuntime:
    """The shared state of one sandbox.

    Args:
        config: the knobs to start with, and to come back to on ``reset``.
        clock: a monotonic clock in seconds (``time.monotonic``).
        wall_clock: seconds since the epoch (``time.time``), for webhook ``occurred_at``.
    """

    def __init__(
        self,
        config: SandboxConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.Lock()
        self.clock = clock
        self.generation = 0
        self._wall_clock = wall_clock
        self._initial = config
        self.state = self._new_state(config)
        self.pusher = WebhookPusher(self)

    @property
    def config(self) -> SandboxConfig:
        """The knobs in force."""
        return self.state.config

    def reset(self, **changes: Any) -> SandboxConfig:
        """Forget everything seen and go back to the initial knobs, with ``changes`` applied.

        Raises:
            SandboxConfigError: a change names an unknown knob or a bad value.
        """
        config = self._initial.replace(**self._checked(changes))
        with self.lock:
            self.state = self._new_state(config)
            self.generation += 1
        self.pusher.wake()
        return config

    def configure(self, **changes: Any) -> SandboxConfig:
        """Change knobs while serving, keeping what was seen.

        Raises:
            SandboxConfigError: a change names an unknown or fixed knob, or a bad value.
        """
        with self.lock:
            config = self.state.config.replace(**self._checked(changes))
            self.state.reconfigure(config, self.clock())
        self.pusher.wake()
        return config

    def stats(self) -> dict[str, object]:
        """What the sandbox saw since the last reset."""
        with self.lock:
            return self.state.snapshot(self.clock())

    def _new_state(self, config: SandboxConfig) -> SandboxState:
        now = self.clock()
        return SandboxState(config, now, wall_offset_s=self._wall_clock() - now)

    def _checked(self, changes: dict[str, Any]) -> dict[str, Any]:
        for name in _FIXED_KNOBS:
            if name in changes and changes[name] != getattr(self._initial, name):
                raise SandboxConfigError(name, changes[name], "unchanged while the sandbox is serving")
        return changes
