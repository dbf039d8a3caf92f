"""A probe, not part of dropq: the CPU each Celery task of a worker uses, by task name.

Loaded by Python itself when this folder is on ``PYTHONPATH``; active only in a ``celery -A ... worker``
process with ``DROPQ_STAGE_CPU`` set to a folder, where it writes ``{pid}.json`` (task name -> [messages,
CPU seconds of the task's own thread]) every 2 s and at shutdown. Run a benchmark with it, then the report::

    DROPQ_STAGE_CPU=/tmp/stages PYTHONPATH=bench/stage_cpu .venv/bin/python bench/latency.py --delays 0.25 \\
        --records 100000 --no-prefork --no-script --sandbox-process
    .venv/bin/python bench/stage_cpu/report.py /tmp/stages

A task's CPU includes the steps it ran inline (a sink's local deliveries); the consumer loop's own work
(receiving, acknowledging, publishing outside a task) is the difference to the process's CPU.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import threading
import time


def _install(folder: str) -> None:
    from celery import signals

    stats: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    local = threading.local()
    lock = threading.Lock()

    @signals.task_prerun.connect(weak=False)
    def _started(**_: object) -> None:
        local.started = time.thread_time()

    @signals.task_postrun.connect(weak=False)
    def _ended(task: object = None, **_: object) -> None:
        started = getattr(local, "started", None)
        if started is None or task is None:
            return
        with lock:
            entry = stats[getattr(task, "name", "?")]
            entry[0] += 1
            entry[1] += time.thread_time() - started

    def _dump(**_: object) -> None:
        with lock:
            text = json.dumps(dict(stats))
        with open(os.path.join(folder, f"{os.getpid()}.json"), "w") as out:
            out.write(text)

    signals.worker_shutdown.connect(_dump, weak=False)

    def _every_2_s() -> None:
        while True:
            time.sleep(2)
            _dump()

    threading.Thread(target=_every_2_s, daemon=True).start()


_folder = os.environ.get("DROPQ_STAGE_CPU")
if _folder and "worker" in sys.argv and "-A" in sys.argv:
    os.makedirs(_folder, exist_ok=True)
    _install(_folder)
