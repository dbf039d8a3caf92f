"""The README stays true: every setting and every command is documented there."""

from __future__ import annotations

from pathlib import Path

from dropq.cli import cli
from dropq.config.settings import ENV_VARS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_environment_variable_has_a_line_in_the_readme() -> None:
    """A setting added to config/settings.py without a README line fails here."""
    missing = [name for name, _, _ in ENV_VARS if f"`{name}`" not in README]
    assert not missing, f"not in README.md: {missing}"


def test_every_cli_command_is_in_the_readme() -> None:
    """A dropq command added without a README line fails here."""
    missing = [name for name in cli.commands if f"dropq {name}" not in README]
    assert not missing, f"not in README.md: {missing}"
