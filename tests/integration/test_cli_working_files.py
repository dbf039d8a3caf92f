"""The CLI's working files are private: a folder of the user's own, files 0600, never through a symlink."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dropq.cli.checks import CliError
from dropq.cli.spool import OutcomeSpool, spool_path_for


def test_the_spool_is_created_0600_in_a_0700_folder_of_the_user(tmp_path: Path) -> None:
    """Nobody else can read a job's outcomes (contact data) while the CLI works."""
    path = spool_path_for("job-1", str(tmp_path))
    spool = OutcomeSpool(path)
    spool.add([{"index": 0, "status": "enriched", "reason": None, "record": {"email": "a@b.example"}}])
    spool.close()
    assert path.parent == tmp_path / f"dropq-{os.getuid()}"
    assert stat.S_IMODE(os.lstat(path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert OutcomeSpool(path).count() == 1, "a re-attached run finds its spool"


def test_a_symlink_planted_at_the_spool_s_path_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    """Another user plants dropq-{uid}/job.sqlite -> a file of the victim's: the CLI stops, writes nothing."""
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    path = spool_path_for("job-2", str(tmp_path))
    path.symlink_to(target)
    with pytest.raises(CliError, match="not a regular file"):
        OutcomeSpool(path)
    assert target.read_text() == "keep me\n"


@pytest.mark.parametrize("kind", ["symlink", "open"])
def test_a_working_folder_that_is_not_private_is_refused(tmp_path: Path, kind: str) -> None:
    """The folder itself planted as a symlink, or left open to others: refused before any file is made."""
    folder = tmp_path / f"dropq-{os.getuid()}"
    if kind == "symlink":
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir(mode=0o700)
        folder.symlink_to(elsewhere)
    else:
        folder.mkdir()
        folder.chmod(0o777)
    with pytest.raises(CliError, match="not a private folder"):
        spool_path_for("job-3", str(tmp_path))
