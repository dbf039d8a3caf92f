"""``dropq sandbox``: every knob is an option and an environment variable, listed by --help."""

from __future__ import annotations

from click.testing import CliRunner

from dropq.cli import cli
from dropq.dropcontact.sandbox.cli import sandbox_command
from dropq.dropcontact.sandbox.config import SandboxConfig


def test_help_lists_every_knob_as_an_option_and_a_variable() -> None:
    """--help names each option and its DROPQ_SANDBOX_ variable."""
    result = CliRunner().invoke(sandbox_command, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    for name, variable, _, _ in SandboxConfig.knobs():
        assert f"--{name.replace('_', '-')}" in result.output
        assert variable in result.output


def test_the_command_is_registered_as_dropq_sandbox() -> None:
    """The main CLI exposes it under the name sandbox."""
    result = CliRunner().invoke(cli, ["sandbox", "--help"])
    assert result.exit_code == 0 and "--api-key" in result.output


def test_a_bad_variable_stops_start_up_with_a_clear_message() -> None:
    """A bad value in the environment is a usage error naming the knob."""
    result = CliRunner().invoke(sandbox_command, [], env={"DROPQ_SANDBOX_RATE_LIMIT": "lots"})
    assert result.exit_code == 2
    assert "rate_limit must be an integer, got 'lots'" in result.output
