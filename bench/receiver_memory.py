"""Peak memory of ``dropq webhooks`` under a hostile 500 MB push, against its own idle memory in the same run.

Starts a private Redis and a real ``dropq webhooks`` process, then sends a
500 MB chunked body (no ``Content-Length``) twice: to a made-up token, and to
a real token (one Redis knows). RSS of the receiver is sampled every 10 ms.

    .venv/bin/python bench/receiver_memory.py [--megabytes 500]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import redis
import requests

from dropq.workers import keys
from dropq.workers.embedded import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parents[1]
_CHUNK = b"x" * (1024 * 1024)


def _body(megabytes: int) -> Iterator[bytes]:
    for _ in range(megabytes):
        yield _CHUNK


def _send(url: str, megabytes: int) -> str:
    """POST the body; what came back (the receiver may close the connection before it has all of it)."""
    started = time.monotonic()
    try:
        answer = requests.post(url, data=_body(megabytes), timeout=120)
        outcome = str(answer.status_code)
    except requests.RequestException as exc:
        outcome = f"connection closed by the receiver ({type(exc).__name__})"
    return f"{outcome} after {time.monotonic() - started:.2f} s"


class _Sampler:
    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        time.sleep(0.2)
        self._stop.set()
        self._thread.join()


def main() -> None:
    """Print idle RSS and the peak under each hostile body."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=500)
    args = parser.parse_args()
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        client.set(keys.webhook_token_key("real-token"), "bench/0/0", ex=600)
        port = free_port()
        env = {**os.environ, "REDIS_URL": server.url, "DROPQ_WEBHOOK_URL": f"http://127.0.0.1:{port}"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "dropq", "webhooks", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"{base}/healthz", timeout=1).text == "ok":
                        break
                except requests.ConnectionError:
                    time.sleep(0.1)
            time.sleep(1)
            idle = psutil.Process(proc.pid).memory_info().rss
            print(f"receiver idle RSS: {idle / 2**20:.1f} MB")
            for label, token in (("made-up token", "made-up"), ("real token", "real-token")):
                with _Sampler(proc.pid) as sampler:
                    outcome = _send(f"{base}/dropq/webhook/{token}", args.megabytes)
                print(
                    f"{args.megabytes} MB chunked body, {label}: {outcome}; peak RSS {sampler.peak / 2**20:.1f} MB"
                    f" (+{(sampler.peak - idle) / 2**20:.1f} MB over idle, x{sampler.peak / idle:.2f})"
                )
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            client.close()


if __name__ == "__main__":
    main()
