"""A broker shared with another application: dropq consumes its own queues, and only those.

Workers here are started the way most Celery shops start theirs: ``celery -A dropq worker``
with no ``-Q``.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import kombu.exceptions
import pytest
import redis
from celery import Celery

from dropq.config.celeryconfig import stage_queues
from dropq.config.settings import from_env
from dropq.workers.embedded import EmbeddedRedis
from tests.support.contacts import make_contacts
from tests.support.pipeline import wait_for_job, worker_env
from tests.support.processes import client_app


def _foreign_app(redis_url: str) -> Celery:
    """Another application on the same broker, with Celery's defaults (its tasks go to the `celery` queue)."""
    app = Celery("crm", broker=redis_url, backend=redis_url)
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
    return app


def test_a_plain_worker_consumes_every_dropq_queue_and_leaves_other_messages_alone(
    start_worker: Any, redis_url: str, redis_client: redis.Redis, sandbox: Any, tmp_path: Path
) -> None:
    """No -Q: a job runs end to end, the worker listens on dropq's four queues, and another app's messages stay."""
    # Given: another application's message waiting on Celery's default queue, and a plain dropq worker
    crm = _foreign_app(redis_url)
    crm.send_task("crm.nightly_report", kwargs={"email": "ada.lovelace@example.com"})
    crm.close()
    worker = start_worker(worker_env(redis_url, sandbox, tmp_path))
    app = client_app(redis_url)
    try:
        # When: a job whose callbacks go to the other application's queue
        callback = {"task": "crm.enriched", "queue": "crm", "on_done": "crm.job_done"}
        kwargs = {"contacts": make_contacts(5), "job_id": "shared-1", "destinations": [], "callback": callback}
        app.send_task("dropq.enrich", kwargs=kwargs).get(timeout=30)
        status = wait_for_job(redis_url, "shared-1")
        time.sleep(1)  # a worker that took foreign messages would have taken them by now
        active = app.control.inspect(timeout=5).active_queues() or {}
    finally:
        app.close()
    # Then
    assert status.delivered == 5
    assert sorted(queue["name"] for queues in active.values() for queue in queues) == sorted(stage_queues(from_env({})))
    assert redis_client.llen("celery") == 1, "the other application's message was taken"
    assert redis_client.llen("crm") == 2, "the callbacks (one batch, one summary) wait for the other application"
    assert "ada.lovelace" not in worker.output()


def test_a_callback_without_its_queue_or_naming_dropq_is_refused_and_nothing_is_stored(
    start_worker: Any, redis_url: str, redis_client: redis.Redis, sandbox: Any, tmp_path: Path
) -> None:
    """dropq.enrich refuses callback messages that would land where the caller's workers never look."""
    start_worker(worker_env(redis_url, sandbox, tmp_path))
    app = client_app(redis_url)
    try:
        for job_id, callback, rule in [
            ("cb-1", {"task": "crm.enriched"}, "callback.queue must be the queue"),
            ("cb-2", {"task": "dropq.sink", "queue": "crm"}, "callback.task must be a task of the calling"),
            ("cb-3", {"task": "crm.enriched", "queue": "dropq.poll"}, "callback.queue must be a queue of the"),
        ]:
            kwargs = {"contacts": make_contacts(3), "job_id": job_id, "callback": callback}
            with pytest.raises(Exception, match=rule):
                app.send_task("dropq.enrich", kwargs=kwargs).get(timeout=30)
            assert not [key for key in redis_client.keys("dropq:*") if job_id in key]
    finally:
        app.close()


def test_a_broker_dedicated_to_dropq_may_opt_in_to_the_default_queue(start_worker: Any, redis_url: str) -> None:
    """DROPQ_CONSUME_DEFAULT_QUEUE=true: a bare send_task is served, and callbacks to `celery` are refused."""
    start_worker({"DROPQ_CONSUME_DEFAULT_QUEUE": "true"})
    app = _foreign_app(redis_url)
    try:
        assert app.send_task("dropq.ping").get(timeout=10) == "pong"
        kwargs = {"contacts": make_contacts(2), "job_id": "cb-celery", "callback": {"task": "crm.x", "queue": "celery"}}
        with pytest.raises(Exception, match=r"callback\.queue must be a queue that dropq's workers do not consume"):
            app.send_task("dropq.enrich", kwargs=kwargs).get(timeout=30)
    finally:
        app.close()


@pytest.mark.slow
def test_a_worker_stays_up_and_keeps_its_own_queues_across_a_broker_restart(
    start_worker: Any, sandbox: Any, tmp_path: Path
) -> None:
    """Broker restarted while the worker holds a countdown message: it reconnects, on dropq's queues only."""
    with EmbeddedRedis(appendonly=True) as server:
        # Given: a worker that has published to another application's queue, and holds a countdown message
        # (a thread pool publishes from the process that consumes, where Celery adds the queue it sent to)
        worker = start_worker(worker_env(server.url, sandbox, tmp_path), pool="threads")
        app = client_app(server.url)
        client = redis.Redis.from_url(server.url)
        try:
            callback = {"task": "crm.enriched", "queue": "crm", "on_done": "crm.job_done"}
            kwargs = {"contacts": make_contacts(5), "job_id": "restart-q", "destinations": [], "callback": callback}
            app.send_task("dropq.enrich", kwargs=kwargs).get(timeout=30)
            wait_for_job(server.url, "restart-q")
            app.send_task("dropq.ping", countdown=60)
            time.sleep(1.5)  # the held message is unacknowledged, and appendfsync (every second) has written it
            # When
            server.restart()
            deadline = time.monotonic() + 30
            replies: list[Any] = []
            while time.monotonic() < deadline and not replies and worker.is_running():
                # The client's own connection broke too: the first calls fail until it reconnects.
                with contextlib.suppress(redis.RedisError, kombu.exceptions.OperationalError):
                    replies = app.control.ping(timeout=0.5)
            active = app.control.inspect(timeout=5).active_queues() or {}
            crm_messages = client.llen("crm")
        finally:
            client.close()
            app.close()
        # Then
        assert worker.is_running(), worker.output()
        assert replies, worker.output()
        assert sorted(queue["name"] for queues in active.values() for queue in queues) == sorted(
            stage_queues(from_env({}))
        )
        assert crm_messages == 2
