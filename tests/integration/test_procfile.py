"""The Procfile's commands start a real worker and Flower; docker-compose runs the same commands."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from dropq.workers.embedded import free_port
from tests.support.processes import ROOT, client_app

BIN = Path(sys.executable).parent


def _procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def test_procfile_starts_a_worker_and_flower(redis_url: str) -> None:
    """`honcho start` brings up a worker that answers ping and a Flower that lists it."""
    # Given
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "FLOWER_PORT": str(port), "PATH": f"{BIN}:{os.environ['PATH']}"}
    proc = subprocess.Popen(
        [str(BIN / "honcho"), "start", "-f", "Procfile"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    app = client_app(redis_url)
    try:
        # When
        deadline = time.monotonic() + 60
        answered, flower_ok = False, False
        while time.monotonic() < deadline and not (answered and flower_ok):
            answered = answered or bool(app.control.ping(timeout=0.5))
            try:
                flower_ok = requests.get(f"http://127.0.0.1:{port}/healthcheck", timeout=1).text == "OK"
            except requests.ConnectionError:
                time.sleep(0.3)
        # Then
        assert answered, "the Procfile worker never answered a ping"
        assert flower_ok, "Flower never answered its healthcheck"
        assert app.send_task("dropq.ping").get(timeout=10) == "pong"
    finally:
        app.close()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_compose_runs_the_procfile_commands() -> None:
    """docker-compose.yml's worker and flower commands are the Procfile's, word for word."""
    compose = (ROOT / "docker-compose.yml").read_text()
    commands = {
        name: json_list
        for name, json_list in re.findall(r"^  (\w+):\n(?:    .*\n)*?    command: (\[.*\])$", compose, re.MULTILINE)
    }
    procfile = _procfile()
    assert shlex.split(procfile["worker"]) == json.loads(commands["worker"])
    flower = [word.replace("${FLOWER_PORT:-5555}", "5555") for word in shlex.split(procfile["flower"])]
    assert flower == json.loads(commands["flower"])


def test_compose_redis_never_evicts_and_persists() -> None:
    """The compose Redis runs with appendonly and noeviction."""
    compose = (ROOT / "docker-compose.yml").read_text()
    assert '"--appendonly", "yes"' in compose
    assert '"--maxmemory-policy", "noeviction"' in compose


def test_the_image_runs_where_no_source_folder_shadows_the_installed_package() -> None:
    """The Dockerfile runs dropq from a folder other than its sources: Celery puts the current folder first."""
    workdir, source_dir = "/", None
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("WORKDIR "):
            workdir = line.split()[1]
        if line.startswith("COPY dropq "):
            source_dir = workdir
    assert source_dir is not None
    assert workdir != source_dir, f"the image runs in {workdir}, where its dropq/ source folder is"
