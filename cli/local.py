"""Bring up, for one run on this machine, whatever is missing: the sandbox, a private Redis, workers.

Used by ``dropq demo``, ``dropq enrich --local`` and ``dropq credits --local``.
What it decides:

* **Sandbox** when asked (no API key): ``python -m dropq.dropcontact.sandbox`` as a
  subprocess on a free port (a process of its own, so the CLI's memory is the
  CLI's alone), with short processing times and a fixed seed unless the
  ``DROPQ_SANDBOX_*`` variables say otherwise. Its results are synthetic.
* **Redis**: a private ``redis-server`` when none answers at ``REDIS_URL``, or
  when the sandbox runs and workers already listen there (they talk to another
  API and would take our tasks), or when ``redis_dir`` holds the data an
  interrupted run kept there (it is resumed from it).
* **Workers**: local worker processes when none answers a ping, or when this
  stack started the sandbox or the Redis (nobody else knows them).

With an API key, a reachable Redis and a listening worker, it starts nothing.
Everything it starts is stopped on exit, in reverse order; ``redis_dir`` is kept
when the exit is an interrupt (Ctrl-C, SIGTERM, SIGHUP), and removed otherwise.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

from celery import Celery

from dropq.cli.checks import CliError, deployment_workers
from dropq.config.celeryconfig import caller_routes
from dropq.config.settings import Settings
from dropq.dropcontact.sandbox.config import SandboxConfig, env_name
from dropq.errors import WorkerError
from dropq.workers.children import die_with_parent
from dropq.workers.embedded import EmbeddedRedis, free_port, is_redis_reachable, stop_process
from dropq.workers.redaction import ContactSafeAMQP

__all__ = ["LocalStack", "LocalStackError", "SANDBOX_LOCAL_DEFAULTS", "LOCAL_POLLING", "client_app"]

# How long local workers may take to answer their first ping.
_WORKER_START_TIMEOUT_S = 60.0
# How long the sandbox subprocess may take to serve.
_SANDBOX_START_TIMEOUT_S = 20.0
# How long the sandbox may take to exit after SIGTERM before it is killed.
_SANDBOX_STOP_TIMEOUT_S = 10.0
# A one-off run's sandbox: a batch takes 0.5 to 2 s (the real API takes 10 to 60 s), always the same draws.
SANDBOX_LOCAL_DEFAULTS: dict[str, str] = {"processing_min_s": "0.5", "processing_max_s": "2", "seed": "7"}
# Poll a fast sandbox soon and often; each is a default the environment can override.
LOCAL_POLLING: dict[str, str] = {"DROPQ_POLL_FIRST_S": "1", "DROPQ_POLL_BASE_S": "1", "DROPQ_POLL_CAP_S": "5"}


class LocalStackError(CliError):
    """Something this stack had to start did not start; the message says what and where its log is."""


def client_app(settings: Settings) -> Celery:
    """A Celery app that only sends tasks and pings workers (no task of ours is imported)."""
    # ContactSafeAMQP: the messages' headers describe a dropq.enrich call (a count), never its contacts.
    app = Celery("dropq-cli", broker=settings.effective_broker_url, backend=settings.redis_url, amqp=ContactSafeAMQP)
    app.conf.update(
        task_serializer="json", accept_content=["json"], result_serializer="json", task_routes=caller_routes(settings)
    )
    return app


def _log_file(kind: str) -> Path:
    handle = tempfile.NamedTemporaryFile(prefix=f"dropq-local-{kind}-", suffix=".log", delete=False)  # noqa: SIM115
    handle.close()
    return Path(handle.name)


class LocalStack:
    """The sandbox, a private Redis and local workers, each only when needed, for the duration of a ``with``.

    Args:
        settings: the process settings; ``stack.settings`` holds the ones actually used.
        echo: where to tell the person what was started.
        workers: worker processes to start when needed (0: never start any).
        concurrency: pool size of each worker process (default: the app's, threads).
        sandbox: start the sandbox (no API key); the settings then point at it.
        environ: the environment the workers and the sandbox inherit (``os.environ`` by default).
        ping_timeout_s: how long to wait for a running worker's answer.
        redis: False for the sandbox alone (``dropq credits --local``): no Redis, no workers.
        redis_dir: where a private Redis keeps its data (append-only file), so that an interrupted run can be
            resumed: when this folder holds data already, the private Redis starts from it whatever answers at
            ``REDIS_URL``. None: a throwaway folder, removed with the Redis.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        echo: Callable[[str], None] = print,
        workers: int = 1,
        concurrency: int | None = None,
        sandbox: bool = False,
        environ: Mapping[str, str] | None = None,
        ping_timeout_s: float = 1.0,
        redis: bool = True,
        redis_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self._echo = echo
        self._workers = workers
        self._concurrency = concurrency
        self._want_sandbox = sandbox
        self._environ = dict(os.environ if environ is None else environ)
        self._ping_timeout_s = ping_timeout_s
        self._need_redis = redis
        self.redis_dir = redis_dir
        self._redis: EmbeddedRedis | None = None
        self._sandbox: subprocess.Popen[bytes] | None = None
        self._processes: list[subprocess.Popen[bytes]] = []
        self._logs: list[Path] = []
        self._app: Celery | None = None
        self.sandbox_url: str | None = None
        self.started: list[str] = []

    @property
    def is_synthetic(self) -> bool:
        """Whether results come from the sandbox this stack started."""
        return self.sandbox_url is not None

    @property
    def owns_redis(self) -> bool:
        """Whether the Redis in use is private to this run (gone when it ends)."""
        return self._redis is not None

    def __enter__(self) -> LocalStack:
        resuming = self.has_kept_redis
        try:
            self._start()
        except BaseException as exc:
            # What an interrupted run kept is kept until a run ends well, whatever stopped this one.
            self.close(keep_logs=True, keep_redis_data=resuming or isinstance(exc, KeyboardInterrupt))
            raise
        return self

    def _start(self) -> None:
        worker_env = {**self._environ}
        if self._want_sandbox:
            url, key = self._start_sandbox()
            self.settings = self.settings.replace(api_url=url, api_key=key)
            worker_env.update({"DROPCONTACT_API_URL": url, "DROPCONTACT_API_KEY": key})
            for name, value in LOCAL_POLLING.items():
                worker_env.setdefault(name, value)
        if not self._need_redis:
            return
        need_workers = self._want_sandbox
        if self.has_kept_redis:
            self._start_redis(f"with the data an interrupted run kept in {self.redis_dir}")
            need_workers = True
        elif not is_redis_reachable(self.settings.redis_url):
            self._start_redis(f"no Redis at {self.settings.redis_url}")
            need_workers = True
        elif self._workers_listening():
            if self._want_sandbox:
                self._start_redis(f"workers already listen at {self.settings.redis_url} for another API")
        else:
            need_workers = True
        if self._workers and need_workers:
            worker_env.update(
                {"REDIS_URL": self.settings.redis_url, "CELERY_BROKER_URL": self.settings.effective_broker_url}
            )
            worker_env.setdefault("DROPQ_LOG_LEVEL", "warning")
            self._start_workers(worker_env)

    def _note(self, item: str) -> None:
        self.started.append(item)
        self._echo(f"started {item} for this run")

    def _start_sandbox(self) -> tuple[str, str]:
        env = {**self._environ}
        for knob, value in SANDBOX_LOCAL_DEFAULTS.items():
            env.setdefault(env_name(knob), value)
        port = free_port()
        env.update({env_name("host"): "127.0.0.1", env_name("port"): str(port)})
        key = SandboxConfig.from_env(env).api_key
        log = _log_file("sandbox")
        self._logs.append(log)
        with log.open("wb") as out:
            self._sandbox = subprocess.Popen(
                [sys.executable, "-m", "dropq", "sandbox"],  # `dropq sandbox`: logs as the workers do
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + _SANDBOX_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._sandbox.poll() is not None:
                raise LocalStackError(f"the sandbox exited at start; see {log}")
            try:
                with urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=1):  # noqa: S310 (our own http URL)
                    break
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        else:
            raise LocalStackError(f"the sandbox did not answer within {_SANDBOX_START_TIMEOUT_S:.0f}s; see {log}")
        self.sandbox_url = url
        self._note(f"the sandbox at {url}")
        return url, key

    @property
    def has_kept_redis(self) -> bool:
        """Whether ``redis_dir`` holds the data of a private Redis (an interrupted run's)."""
        return self.redis_dir is not None and self.redis_dir.is_dir() and any(self.redis_dir.iterdir())

    def _start_redis(self, why: str) -> None:
        kept = self.redis_dir
        try:
            if kept is not None:
                kept.mkdir(mode=0o700, exist_ok=True)
                self._redis = EmbeddedRedis(appendonly=True, directory=str(kept), die_with_parent=True).start()
            else:
                self._redis = EmbeddedRedis(die_with_parent=True).start()
        except WorkerError as exc:  # no redis-server anywhere, or one that did not start
            raise LocalStackError(f"a private Redis could not start: {exc}") from exc
        self.settings = self.settings.replace(redis_url=self._redis.url, broker_url="")
        self._note(f"a private Redis at {self._redis.url} ({why})")
        if self._app is not None:
            self._app.close()
            self._app = None

    def _workers_listening(self) -> bool:
        try:
            return bool(deployment_workers(self.client_app(), self.settings, self._ping_timeout_s))
        except Exception:  # a broker that refuses a ping has no worker for us
            return False

    def _start_workers(self, env: dict[str, str]) -> None:
        names = [f"local{index}-{os.getpid()}@{socket.gethostname()}" for index in range(self._workers)]
        log = _log_file("workers")
        self._logs.append(log)
        with log.open("wb") as out:
            for name in names:
                args = [
                    sys.executable, "-m", "celery", "-A", "dropq", "worker",
                    *(["-c", str(self._concurrency)] if self._concurrency else []),
                    "-n", name, "--without-mingle", "--without-gossip", "-l", "warning",
                ]  # fmt: skip
                self._processes.append(
                    subprocess.Popen(
                        args,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        preexec_fn=die_with_parent,
                    )
                )
        deadline = time.monotonic() + _WORKER_START_TIMEOUT_S
        app = self.client_app()
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self._processes):
                raise LocalStackError(f"a local worker exited at start; see {log}")
            if len(app.control.ping(destination=names, timeout=0.5)) >= len(names):
                self._note(f"{len(names)} local worker process(es)")
                return
        raise LocalStackError(f"local workers did not answer within {_WORKER_START_TIMEOUT_S:.0f}s; see {log}")

    def client_app(self) -> Celery:
        """A Celery app on this stack's broker and backend (made once)."""
        if self._app is None:
            self._app = client_app(self.settings)
        return self._app

    def close(self, *, keep_logs: bool = False, keep_redis_data: bool = False) -> None:
        """Stop the workers, then the private Redis, then the sandbox; drop the logs of a clean run.

        Args:
            keep_logs: keep the log files (something went wrong: the message names them).
            keep_redis_data: keep ``redis_dir`` (an interrupted or failed run, to be resumed); else it is removed.
        """
        clean = not keep_logs
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()
                clean = False
        self._processes.clear()
        if self._app is not None:
            self._app.close()
            self._app = None
        if self._redis is not None:
            self._redis.stop()
            self._redis = None
            if self.redis_dir is not None and not keep_redis_data:
                shutil.rmtree(self.redis_dir, ignore_errors=True)
        if self._sandbox is not None:
            stop_process(self._sandbox, _SANDBOX_STOP_TIMEOUT_S)
            self._sandbox = None
        if clean:
            for log in self._logs:
                log.unlink(missing_ok=True)
            self._logs.clear()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        interrupted = exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
        # A run that failed keeps its private Redis's data too: what it sent (and paid for) is resumed by the
        # next run of the same job rather than sent again; only a run that ends well removes it.
        self.close(keep_logs=exc_type is not None and not interrupted, keep_redis_data=exc_type is not None)
