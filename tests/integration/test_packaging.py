"""The built wheel, installed in a fresh environment: one top-level name, and it works beside a user's own code."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.support.processes import ROOT

_BUILD_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dropq's wheel, built from this checkout the way pip builds it for a user."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        check=True, timeout=_BUILD_TIMEOUT_S,
    )  # fmt: skip
    return next(out.glob("dropq-*.whl"))


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with the wheel installed; its dependencies come from this one's site-packages.

    A ``.pth`` line adds that folder to the path without running the ``.pth`` files in it, so the
    editable install of this checkout is not seen: ``dropq`` comes from the wheel alone.
    """
    root = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    Path(purelib, "dev_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)],
        check=True, timeout=_BUILD_TIMEOUT_S,
    )  # fmt: skip
    return root


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    """A folder of someone else's project: its own config/ package (cookiecutter-django's) and a tasks.py."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "__init__.py").write_text("DJANGO = True\n")
    (tmp_path / "tasks.py").write_text("RUN = 'their own tasks'\n")
    return tmp_path


def test_the_wheel_installs_one_top_level_name(wheel: Path) -> None:
    """Everything is under dropq/: top_level.txt says dropq, and the sample, the Lua scripts and LICENSE ship."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        assert archive.read(top_level).decode().split() == ["dropq"]
    roots = {name.split("/", 1)[0] for name in names}
    assert {root for root in roots if not root.endswith(".dist-info")} == {"dropq"}
    assert "dropq/examples/contacts.csv" in names
    assert "dropq/workers/jobs/claim.lua" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


def test_every_package_folder_of_the_checkout_is_in_the_wheel(wheel: Path) -> None:
    """A package folder added to the repository but not to pyproject.toml would be missing from installs."""
    mapped = {"cli", "config", "dropcontact", "examples", "tasks", "workers", "dropq"}
    folders = {
        str(init.parent.relative_to(ROOT))
        for top in mapped
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for folder in folders:
        top, _, rest = folder.partition("/")
        installed = "dropq/" + (f"{top}/{rest}/" if rest else ("" if top == "dropq" else f"{top}/"))
        assert installed + "__init__.py" in names, folder


def test_the_installed_package_works_from_a_folder_with_its_own_config_and_tasks(
    venv: Path, user_project: Path, redis_url: str
) -> None:
    """Beside a config/ package and a tasks.py, the app imports and `dropq demo` runs end to end from the wheel."""
    # Given
    env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": ""}
    env.pop("DROPCONTACT_API_KEY", None)
    # When
    imported = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import dropq, dropq.workers.app as a, config, tasks; "
         "print(a.__file__); print(type(dropq.app).__name__, config.DJANGO, tasks.RUN)"],
        cwd=user_project, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    demo = subprocess.run(
        [str(venv / "bin" / "dropq"), "demo", "--quiet", "-o", "out.csv"],
        cwd=user_project, env=env, capture_output=True, text=True, check=False, timeout=180,
    )  # fmt: skip
    # Then
    assert imported.returncode == 0, imported.stderr
    app_file, summary = imported.stdout.splitlines()
    assert app_file.startswith(str(venv)), app_file
    assert summary == "Celery True their own tasks"
    assert demo.returncode == 0, demo.stdout + demo.stderr
    with (user_project / "out.csv").open(newline="") as out:
        rows = list(csv.DictReader(out))
    sample = (ROOT / "examples" / "contacts.csv").read_text().splitlines()
    assert len(rows) == len(sample) - 1
