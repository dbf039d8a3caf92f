"""Shared fixtures: a private Redis per test session, a clean database per test, real workers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from dropq.workers.embedded import EmbeddedRedis
from tests.support.processes import WorkerProcess

# The sandbox fixtures (a real emulator server over HTTP) and PostgreSQL's live with their support code.
pytest_plugins = ["tests.support.sandbox", "tests.support.postgres"]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """A private redis-server on a free port, for the whole session."""
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> Iterator[str]:
    """The private Redis's URL, flushed before and after the test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield redis_server.url
    client.flushall()
    client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the flushed private Redis."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def start_worker(redis_url: str) -> Iterator[type[WorkerProcess]]:
    """Start real worker processes on the private Redis; all are stopped after the test."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str] | None = None, **kwargs: object) -> WorkerProcess:
        worker = WorkerProcess({"REDIS_URL": redis_url, **(env or {})}, **kwargs)  # type: ignore[arg-type]
        started.append(worker)
        return worker.start()

    yield start  # type: ignore[misc]
    for worker in started:
        worker.stop()
