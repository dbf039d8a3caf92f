"""No contact reaches Celery's events or inspect replies (what Flower shows), whoever calls ``dropq.enrich``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from tests.support.pipeline import wait_for_job, worker_env
from tests.support.processes import ROOT, client_app

pytestmark = pytest.mark.timeout(90)

# Values no event may carry: each is one contact field of the calls below.
_MARKERS = ("ada.privacy@example.org", "Zyxwvutsrq", "Quuxcorp-Privacy", "privacy-example.org")
_CONTACTS = [
    {"first_name": "Ada", "last_name": "Zyxwvutsrq", "email": "ada.privacy@example.org", "company": "Quuxcorp-Privacy"},
    {"first_name": "Bob", "last_name": "Zyxwvutsrq", "website": "privacy-example.org"},
]


# Flower broadcasts enable_events every 5 s (its events_enable_interval); the tests ask more often.
_ENABLE_EVENTS_EVERY_S = 0.5


class EventLog:
    """Every Celery event on a broker, captured by a real ``app.events.Receiver`` in a thread.

    Like Flower, it asks the workers to send task events (``enable_events``) while it listens:
    workers send none until a monitor asks (``DROPQ_TASK_EVENTS`` off).
    """

    def __init__(self, app: Celery, *, ask: bool = True) -> None:
        self.events: list[dict[str, Any]] = []
        self._app = app
        self._ask = ask
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._receiver: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._asker = threading.Thread(target=self._ask_for_events, daemon=True)

    def _ask_for_events(self) -> None:
        while not self._stop.wait(_ENABLE_EVENTS_EVERY_S):
            self._app.control.enable_events()

    def _run(self) -> None:
        with self._app.connection() as conn:
            self._receiver = self._app.events.Receiver(conn, handlers={"*": self.events.append})
            self._ready.set()
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def __enter__(self) -> EventLog:
        self._thread.start()
        self._ready.wait(10)
        time.sleep(0.3)  # the receiver's queue is bound once capture() consumes
        if self._ask:
            # Once with replies: the workers that answer send events from now on (the thread keeps asking).
            self._app.control.broadcast("enable_events", reply=True, timeout=2)
            self._asker.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._asker.is_alive():
            self._asker.join(5)
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(5)

    def of(self, kind: str, task_id: str) -> list[dict[str, Any]]:
        """The events of one kind (``task-received``...) for one task."""
        return [e for e in list(self.events) if e.get("type") == kind and e.get("uuid") == task_id]

    def wait_for(self, kind: str, task_id: str, timeout_s: float = 20.0) -> dict[str, Any]:
        """The first event of that kind for that task (bounded wait)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.of(kind, task_id)
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no {kind} for {task_id} in {len(self.events)} events")


@pytest.fixture
def events(redis_url: str) -> Iterator[EventLog]:
    """A real event receiver on the private Redis broker."""
    app = client_app(redis_url)
    with EventLog(app) as log:
        yield log
    app.close()


def test_a_worker_sends_task_events_once_a_monitor_asks(
    redis_url: str, sandbox: Any, start_worker: Any, tmp_path: Path
) -> None:
    """No task events from a worker on the defaults (they cost CPU) until enable_events, which Flower sends."""
    # Given
    start_worker(worker_env(redis_url, sandbox, tmp_path))
    caller = client_app(redis_url)
    try:
        with EventLog(caller, ask=False) as quiet:
            before = caller.send_task("dropq.enrich", kwargs={"contacts": _CONTACTS, "job_id": "events-before"})
            assert before.get(timeout=30)["received"] == 2
            time.sleep(0.5)
        # When
        with EventLog(caller) as asked:
            after = caller.send_task("dropq.enrich", kwargs={"contacts": _CONTACTS, "job_id": "events-after"})
            assert after.get(timeout=30)["received"] == 2
            # Then
            asked.wait_for("task-received", after.id)
            asked.wait_for("task-succeeded", after.id)
        assert not [e for e in quiet.events if str(e.get("type", "")).startswith("task-")]
    finally:
        caller.close()


def _assert_no_marker(where: str, payload: object) -> None:
    text = json.dumps(payload, default=str)
    for marker in _MARKERS:
        assert marker not in text, f"{marker!r} leaked into {where}: {text[:400]}"


def test_a_plain_send_task_shows_a_count_not_the_contacts(
    redis_url: str, sandbox: Any, start_worker: Any, events: EventLog, tmp_path: Path
) -> None:
    """Another app's send_task sets no kwargsrepr; the worker's events still show "<2 contacts>" only."""
    # Given
    env = worker_env(redis_url, sandbox, tmp_path)
    start_worker(env)
    caller = client_app(redis_url)
    # When
    result = caller.send_task("dropq.enrich", kwargs={"contacts": _CONTACTS, "job_id": "privacy-plain"})
    assert result.get(timeout=30)["received"] == 2
    wait_for_job(redis_url, "privacy-plain")
    received = events.wait_for("task-received", result.id)
    events.wait_for("task-succeeded", result.id)
    caller.close()
    # Then
    assert "<2 contacts>" in received["kwargs"] and "'privacy-plain'" in received["kwargs"]
    _assert_no_marker("the worker's events", events.events)


def test_the_cli_sends_no_contact_in_its_events(
    redis_url: str, sandbox: Any, start_worker: Any, events: EventLog, tmp_path: Path
) -> None:
    """`dropq enrich` (dropq's own app, task-sent events on) shows a count in task-sent and task-received."""
    # Given
    env = worker_env(redis_url, sandbox, tmp_path, DROPQ_TASK_EVENTS="1")
    start_worker(env)
    source = tmp_path / "in.csv"
    source.write_text("first_name,last_name,email,company\nAda,Zyxwvutsrq,ada.privacy@example.org,Quuxcorp-Privacy\n")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DROPQ_", "DROPCONTACT_"))} | env
    # When
    done = subprocess.run(
        [sys.executable, "-m", "dropq", "enrich", str(source), "-o", str(tmp_path / "out.csv"), "--job-id", "cli-priv"],
        cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=80, check=False,
    )  # fmt: skip
    # Then
    assert done.returncode == 0, done.stderr
    received = [e for e in list(events.events) if e.get("type") == "task-received" and e.get("name") == "dropq.enrich"]
    assert received, "the worker sent no task-received event for the CLI's call"
    assert all("<1 contacts>" in e["kwargs"] for e in received)
    _assert_no_marker("the CLI's and the worker's events", events.events)


_SEND_WITH_DROPQS_APP = """
import json, sys
from dropq.workers.app import app
result = app.send_task("dropq.enrich", kwargs=json.loads(sys.argv[1]))
print(result.get(timeout=30)["received"])
"""


def test_dropqs_own_app_sends_no_contact_in_its_task_sent_events(
    redis_url: str, sandbox: Any, start_worker: Any, events: EventLog, tmp_path: Path
) -> None:
    """A Python caller of dropq's app (task-sent events on) shows a count in task-sent as in task-received."""
    # Given
    env = worker_env(redis_url, sandbox, tmp_path, DROPQ_TASK_EVENTS="1")
    start_worker(env)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DROPQ_", "DROPCONTACT_"))} | env
    call = json.dumps({"contacts": _CONTACTS, "job_id": "privacy-own-app"})
    # When
    done = subprocess.run(
        [sys.executable, "-c", _SEND_WITH_DROPQS_APP, call],
        cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    # Then
    assert done.returncode == 0 and done.stdout.strip() == "2", done.stderr
    sent = [e for e in list(events.events) if e.get("type") == "task-sent" and e.get("name") == "dropq.enrich"]
    assert sent, "dropq's app sent no task-sent event"
    assert all("<2 contacts>" in e["kwargs"] for e in sent)
    events.wait_for("task-received", sent[0]["uuid"])
    _assert_no_marker("dropq's app's events", events.events)


def test_inspect_replies_describe_a_waiting_call(
    redis_url: str, sandbox: Any, start_worker: Any, tmp_path: Path
) -> None:
    """A call held with a countdown shows in `inspect scheduled` (Flower's worker page) as a count."""
    # Given
    start_worker(worker_env(redis_url, sandbox, tmp_path))
    caller = client_app(redis_url)
    try:
        result = caller.send_task(
            "dropq.enrich", kwargs={"contacts": _CONTACTS, "job_id": "privacy-later"}, countdown=60
        )
        # When
        deadline, scheduled = time.monotonic() + 20, []
        while time.monotonic() < deadline and not scheduled:
            replies = caller.control.inspect(timeout=1).scheduled() or {}
            scheduled = [entry for entries in replies.values() for entry in entries]
        # Then
        assert scheduled, "the held call never showed in inspect scheduled"
        assert "<2 contacts>" in scheduled[0]["request"]["kwargs"]
        _assert_no_marker("inspect scheduled", scheduled)
        caller.control.revoke(result.id)
    finally:
        caller.close()
