"""The deployment files: the Procfile starts a worker and Flower; compose and the image run documented commands
that start, and the compose file is safe as shipped (no open Redis, no open Flower)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from dropq.dropcontact.client import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_READ_TIMEOUT_S
from dropq.workers.embedded import free_port
from tests.support.deployment import (
    compose_commands,
    compose_problems,
    dockerfile_commands,
    load_compose,
    procfile_commands,
)
from tests.support.processes import ROOT, client_app

BIN = Path(sys.executable).parent


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


README = (ROOT / "README.md").read_text()
# The environment a command gets here: none of the developer's dropq variables.
_BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("DROPQ_", "DROPCONTACT_", "FLOWER_", "REDIS_"))}


def _all_commands() -> dict[str, list[str]]:
    # The services of dropq's image (Redis runs its own image's server).
    ours = {
        "services": {n: s for n, s in load_compose()["services"].items() if str(s.get("image")).startswith("dropq")}
    }
    compose = {f"compose {k}": v for k, v in compose_commands(ours).items()}
    image = {f"Dockerfile {k}": v for k, v in dockerfile_commands().items()}
    procfile = {f"Procfile {k}": v for k, v in procfile_commands().items()}
    return {**compose, **image, **procfile}


def test_every_deployment_command_is_a_dropq_command_the_readme_documents() -> None:
    """Compose's commands and healthchecks, the image's CMD and HEALTHCHECK, the Procfile: each a README row."""
    commands = _all_commands()
    assert {"compose worker", "compose flower", "compose webhooks", "Dockerfile CMD", "Dockerfile HEALTHCHECK"} <= set(
        commands
    )
    documented = set(re.findall(r"^\| `dropq (\w+)", README, re.MULTILINE))
    for where, words in commands.items():
        if words[0] == "python":  # an HTTP probe of the service's own health endpoint, checked below
            assert any(path in words[-1] for path in ("/healthcheck", "/healthz")), where
            continue
        assert words[0] == "dropq" and words[1] in documented, f"{where}: {words} is not a documented dropq command"


def _start(words: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / words[0]), *words[1:]], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip


def _stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.stdout.read() if process.stdout else ""


def _answer(url: str, auth: tuple[str, str] | None = None, timeout_s: float = 30.0) -> requests.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return requests.get(url, auth=auth, timeout=2)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _with_port(words: list[str], old: str, new: int) -> list[str]:
    return [w.replace(old, str(new)) for w in words]


def test_the_compose_commands_start_and_their_healthchecks_pass(redis_url: str) -> None:
    """Compose's worker, its healthcheck (the image's too), the receiver and Flower, as compose runs them."""
    # Given
    commands = compose_commands(load_compose())
    env = {**_BASE_ENV, "REDIS_URL": redis_url, "DROPQ_LOG_FORMAT": "json", "PATH": f"{BIN}:{os.environ['PATH']}"}
    worker = _start([*commands["worker"], "-p", "1", "--without-mingle", "--without-gossip"], env)
    started: list[subprocess.Popen[str]] = [worker]
    try:
        # When / Then: the worker answers, so its healthcheck passes
        health = commands["worker:healthcheck"]
        assert health == dockerfile_commands()["HEALTHCHECK"]
        deadline, done = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            done = subprocess.run([str(BIN / health[0]), *health[1:]], env=env, capture_output=True, text=True,
                                  timeout=30, check=False)  # fmt: skip
            if done.returncode == 0:
                break
        assert done is not None and done.returncode == 0, (done.stdout if done else "") + worker.stdout.name
        # the receiver, on a free port, answers its healthcheck's URL
        port = free_port()
        started.append(_start(_with_port(commands["webhooks"], "8081", port), env))
        assert _answer(f"http://127.0.0.1:{port}/healthz").text == "ok"
        # Flower as compose runs it refuses to start without auth...
        refused = subprocess.run([str(BIN / "dropq"), *commands["flower"][1:]], env=env, capture_output=True,
                                 text=True, timeout=60, check=False)  # fmt: skip
        assert refused.returncode == 2 and "FLOWER_BASIC_AUTH" in refused.stderr
        # ...and with it, asks for it everywhere but its healthcheck
        port = free_port()
        started.append(
            _start(_with_port(commands["flower"], "5555", port), {**env, "FLOWER_BASIC_AUTH": "ops:pw-9f2c"})
        )
        assert _answer(f"http://127.0.0.1:{port}/healthcheck").text == "OK"
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 401
        assert requests.get(f"http://127.0.0.1:{port}/", auth=("ops", "pw-9f2c"), timeout=5).status_code == 200
    finally:
        outputs = [_stop(p) for p in started]
    assert not any("pw-9f2c" in out for out in outputs), "a password reached a log"
    # DROPQ_LOG_FORMAT=json, as compose sets it: the worker, the receiver and Flower write JSON lines only
    for output in outputs:
        for line in filter(str.strip, output.splitlines()):
            assert isinstance(json.loads(line), dict), line


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed (.ci/run installs it)"
)
def test_docker_compose_accepts_the_compose_file(tmp_path: Path) -> None:
    """`docker-compose config` (the compose schema and interpolation) passes on the shipped file."""
    env = {**_BASE_ENV, "REDIS_PASSWORD": "example", "FLOWER_BASIC_AUTH": "a:b"}
    done = subprocess.run(["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "--profile", "webhooks",
                           "config", "--quiet"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_the_shipped_compose_file_has_no_open_door() -> None:
    """No Redis published or without a password, no Flower without auth, the key only where the API is called."""
    problems = compose_problems(
        load_compose(), read_timeout_s=DEFAULT_READ_TIMEOUT_S, connect_timeout_s=DEFAULT_CONNECT_TIMEOUT_S
    )
    assert problems == []


# The compose file dropq shipped before: the check must find each of its open doors.
_OPEN_COMPOSE: dict[str, Any] = {
    "services": {
        "redis": {"image": "redis:7", "ports": ["6379:6379"],
                  "command": ["redis-server", "--appendonly", "yes", "--maxmemory-policy", "noeviction"]},
        "worker": {"image": "dropq", "command": ["dropq", "worker"], "environment": {"DROPCONTACT_API_KEY": "k"}},
        "flower": {"image": "dropq", "command": ["celery", "-A", "dropq", "flower", "--port=5555"],
                   "ports": ["5555:5555"], "environment": {"DROPCONTACT_API_KEY": "k"}},
    }
}  # fmt: skip


def test_the_check_finds_an_open_redis_and_an_open_flower() -> None:
    """The check is not a rubber stamp: the old file's published Redis and open Flower are reported."""
    problems = compose_problems(_OPEN_COMPOSE, read_timeout_s=30, connect_timeout_s=5)
    expected_problems = (
        "redis: Redis without requirepass", "redis: Redis published", "without maxmemory",
        "flower: Flower without enforced basic auth", "flower: Flower published", "flower: given the API key",
        "worker: stop_grace_period", "worker: no volume at /data",
    )  # fmt: skip
    for expected in expected_problems:
        assert any(p.startswith(expected) or expected in p for p in problems), (expected, problems)


def test_the_compose_redis_refuses_to_run_without_its_password_and_requires_it(tmp_path: Path) -> None:
    """The compose Redis's own start script, on this machine's redis-server: no password, no start; then AUTH."""
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on PATH")
    script = load_compose()["services"]["redis"]["command"][2].replace("$$", "$")
    script = script.replace("/tmp/redis-auth.conf", str(tmp_path / "auth.conf")).replace("chown redis:redis", "true")
    port = free_port()
    script += f" --port {port} --bind 127.0.0.1 --dir {tmp_path} --save ''"
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "docker-entrypoint.sh").write_text('#!/bin/sh\nexec "$@"\n')
    (stub / "docker-entrypoint.sh").chmod(0o755)
    env = {**_BASE_ENV, "PATH": f"{stub}:{os.environ['PATH']}", "REDIS_MAXMEMORY": "64mb"}
    # When no password is given
    refused = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=10, check=False)
    assert refused.returncode == 1 and "set REDIS_PASSWORD" in refused.stderr
    # When one is given through a file
    (tmp_path / "pw").write_text("s3cret-pw\n")
    server = subprocess.Popen(["sh", "-c", script], env={**env, "REDIS_PASSWORD_FILE": str(tmp_path / "pw")},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        client = redis.Redis(port=port, password="s3cret-pw", socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        # Then it answers only with the password, never evicts, and caps its memory
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert client.config_get("maxmemory") == {"maxmemory": str(64 * 1024 * 1024)}
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        assert "s3cret-pw" not in " ".join(Path(f"/proc/{server.pid}/cmdline").read_text().split("\0"))
        client.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)


def test_the_image_runs_the_installed_package_from_a_writable_volume() -> None:
    """Pinned bases, dependencies in a layer before the code, no source where it runs, a non-root user, /data."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^ARG PYTHON_IMAGE=(\S+)", dockerfile, re.MULTILINE)
    assert bases and re.fullmatch(r"python:3\.11\.\d+-slim-\w+@sha256:[0-9a-f]{64}", bases[0])
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", load_compose()["services"]["redis"]["image"])
    final = dockerfile.split("\nFROM ")[-1]
    assert "COPY . ." not in final and "COPY --from=wheel" in final, "the final stage holds no source folder"
    assert final.index("-c /tmp/deps/constraints.txt") < final.index("COPY --from=wheel"), "dependencies come first"
    assert re.search(r"^WORKDIR /data$", final, re.MULTILINE) and re.search(r"^USER dropq$", final, re.MULTILINE)
    assert 'VOLUME ["/data"]' in final and "chown -R dropq:dropq /data" in final
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "out", ".git", "tests", ".env"} <= set(ignored)
