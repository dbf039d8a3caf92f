"""The sandbox served by uvicorn from a thread: what tests and local runs start in-process.

``SandboxServer`` binds its socket itself (127.0.0.1 and a free port by
default), so ``url`` is known as soon as ``start()`` returns, and inspects the
same runtime the app serves: ``stats()``, ``configure()`` and ``reset()`` need
no HTTP round trip.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from dropq.dropcontact.sandbox.app import create_app
from dropq.dropcontact.sandbox.config import SandboxConfig
from dropq.dropcontact.sandbox.runtime import SandboxRuntime
from dropq.errors import SandboxStartError
from dropq.http_server import server_limits

__all__ = ["SandboxServer", "bind_socket"]

# How long uvicorn may take to start serving in its thread.
_START_TIMEOUT_S = 10.0
# How long stop() waits for in-flight requests before giving up on the thread.
_STOP_TIMEOUT_S = 5.0
# Enough queued connections for the benchmark's client processes.
_LISTEN_BACKLOG = 2048


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket (port 0 picks a free one)."""
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and without it
    # keep-alive clients wait 40 ms per request on delayed ACKs.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(_LISTEN_BACKLOG)
    return sock


class SandboxServer:
    """A sandbox on a real socket, served from a background thread.

    Args:
        config: the knobs; by default the API's defaults on 127.0.0.1 and a free port.
        **changes: knob changes applied on top of ``config``.
    """

    def __init__(self, config: SandboxConfig | None = None, **changes: Any) -> None:
        base = config or SandboxConfig(host="127.0.0.1", port=0)
        self.runtime = SandboxRuntime(base.replace(**changes))
        self.app = create_app(runtime=self.runtime)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:53127`` (no trailing slash)."""
        host = self.runtime.config.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self._port}"

    @property
    def api_key(self) -> str:
        """The one key the sandbox accepts."""
        return self.runtime.config.api_key

    def start(self) -> SandboxServer:
        """Bind, serve from a thread, and return once requests are answered.

        Raises:
            SandboxStartError: uvicorn did not start in time.
        """
        config = self.runtime.config
        sock = bind_socket(config.host, config.port)
        self._port = int(sock.getsockname()[1])
        server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_level="warning",
                access_log=False,
                **server_limits(),
                log_config=None,
                lifespan="on",
            )
        )
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="dropq-sandbox", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise SandboxStartError(f"the sandbox did not start on {config.host}:{self._port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT_S)
        self._server = None
        self._thread = None

    def reset(self, **changes: Any) -> SandboxServer:
        """Forget everything seen and go back to the starting knobs, with ``changes`` applied."""
        self.runtime.reset(**changes)
        return self

    def configure(self, **changes: Any) -> SandboxServer:
        """Change knobs while serving (e.g. ``credits=10``, ``error_probability=0.2``)."""
        self.runtime.configure(**changes)
        return self

    def stats(self) -> dict[str, Any]:
        """What the sandbox saw since the last reset (the same as ``GET /_sandbox/stats``)."""
        return self.runtime.stats()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
