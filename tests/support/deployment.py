"""Reading the deployment files (docker-compose.yml, Dockerfile, Procfile) and checking them for open doors."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from tests.support.processes import ROOT

__all__ = ["load_compose", "compose_commands", "dockerfile_commands", "procfile_commands", "compose_problems"]

# Variables whose presence in a service's environment means it holds the API key.
_API_KEY_VARS = ("DROPCONTACT_API_KEY", "DROPCONTACT_API_KEY_FILE")
_LOOPBACK = ("127.0.0.1:", "localhost:", "[::1]:")


def load_compose(path: Path = ROOT / "docker-compose.yml") -> dict[str, Any]:
    """The compose file as data, YAML anchors and merge keys resolved."""
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def compose_commands(compose: dict[str, Any]) -> dict[str, list[str]]:
    """Each service's command and its healthcheck's, as argument lists (``name`` and ``name:healthcheck``)."""
    commands: dict[str, list[str]] = {}
    for name, service in compose["services"].items():
        if isinstance(service.get("command"), list):
            commands[name] = [str(word) for word in service["command"]]
        test = (service.get("healthcheck") or {}).get("test")
        if isinstance(test, list) and test and test[0] == "CMD":
            commands[f"{name}:healthcheck"] = [str(word) for word in test[1:]]
    return commands


def dockerfile_commands(path: Path = ROOT / "Dockerfile") -> dict[str, list[str]]:
    """The image's ``CMD`` and ``HEALTHCHECK ... CMD`` (exec form), as argument lists."""
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line.startswith("CMD "):
            found["CMD"] = yaml.safe_load(line[len("CMD ") :])
        elif line.startswith("HEALTHCHECK "):
            found["HEALTHCHECK"] = yaml.safe_load(line.split(" CMD ", 1)[1])
    return found


def procfile_commands(path: Path = ROOT / "Procfile") -> dict[str, list[str]]:
    """The Procfile's processes, as argument lists."""
    lines = [line.split(": ", 1) for line in path.read_text().splitlines() if line.strip()]
    return {name: shlex.split(command) for name, command in lines}


def _published(service: dict[str, Any]) -> list[str]:
    return [str(port) for port in service.get("ports") or []]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", value.strip())
    if not match or not any(match.groups()):
        return 0.0
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


def compose_problems(compose: dict[str, Any], *, read_timeout_s: float, connect_timeout_s: float) -> list[str]:
    """What makes a compose file unsafe to run as shipped; empty when nothing does.

    Looks for: a Redis published beyond the loopback, or published at all without ``requirepass``;
    a Redis without ``maxmemory`` and ``noeviction``; a Flower without basic auth (or published
    beyond the loopback); the API key given to a service that does not call the API; a dropq
    service stopped sooner than an HTTP call can take; dropq services not sharing one /data volume.
    """
    problems: list[str] = []
    data_volumes = set()
    for name, service in compose["services"].items():
        image = str(service.get("image", ""))
        command = service.get("command") or []
        words = [str(w) for w in command] if isinstance(command, list) else shlex.split(str(command))
        text = " ".join(words)
        env = _environment(service)
        published = _published(service)
        if image.startswith("redis"):
            if "requirepass" not in text:
                problems.append(f"{name}: Redis without requirepass")
            if published and ("requirepass" not in text or not all(p.startswith(_LOOPBACK) for p in published)):
                problems.append(f"{name}: Redis published on {published}")
            if "--maxmemory " not in text + " " or "noeviction" not in text:
                problems.append(f"{name}: Redis without maxmemory and noeviction")
            continue
        is_flower = "flower" in words
        if is_flower:
            has_auth = any(w.startswith(("--basic-auth", "--basic_auth")) for w in words) or any(
                env.get(v) is not None for v in ("FLOWER_BASIC_AUTH", "FLOWER_BASIC_AUTH_FILE")
            )
            # `dropq flower` refuses to listen beyond the loopback without auth; plain `celery flower` does not.
            enforced = words[:2] == ["dropq", "flower"]
            if not (has_auth and enforced):
                problems.append(f"{name}: Flower without enforced basic auth")
            if not all(p.startswith(_LOOPBACK) for p in published):
                problems.append(f"{name}: Flower published on {published}")
        calls_api = words[:2] == ["dropq", "worker"] or words[:4] == ["celery", "-A", "dropq", "worker"]
        if any(v in env for v in _API_KEY_VARS) and not calls_api:
            problems.append(f"{name}: given the API key, which it never uses")
        if words[:1] == ["dropq"] or words[:3] == ["celery", "-A", "dropq"]:
            grace = _seconds(str(service.get("stop_grace_period", "10s")))
            if calls_api and grace <= read_timeout_s + connect_timeout_s:
                problems.append(f"{name}: stop_grace_period {grace:g}s, not above an HTTP call's timeouts")
            mounts = [str(v) for v in service.get("volumes") or [] if str(v).split(":")[1:2] == ["/data"]]
            if not mounts:
                problems.append(f"{name}: no volume at /data for the file destinations")
            data_volumes.update(m.split(":")[0] for m in mounts)
    if len(data_volumes) > 1:
        problems.append(f"dropq services use several /data volumes: {sorted(data_volumes)}")
    return problems
