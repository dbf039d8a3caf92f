"""The sandbox's knobs: defaults, environment variables, changes and their checks."""

from __future__ import annotations

import pickle

import pytest

from dropq.dropcontact.sandbox.config import SandboxConfig, SandboxConfigError, env_name


def test_defaults_behave_like_the_real_api_without_faults() -> None:
    """60 requests per second, the sandbox key, 10-60 s processing, 30 days retention, no faults."""
    config = SandboxConfig.from_env({})
    assert (config.rate_limit, config.rate_window_s, config.api_key) == (60, 1.0, "sandbox")
    assert (config.processing_min_s, config.processing_max_s) == (10.0, 60.0)
    assert config.retention_s == 30 * 24 * 3600
    assert config.error_probability == config.drop_probability == config.storm_s == 0.0
    assert config.error_statuses == (500, 503, 504, 524)


def test_every_knob_reads_its_dropq_sandbox_variable() -> None:
    """Each knob has a DROPQ_SANDBOX_ variable, parsed to the knob's type."""
    config = SandboxConfig.from_env(
        {
            "DROPQ_SANDBOX_PORT": "9000",
            "DROPQ_SANDBOX_API_KEY": "k",
            "DROPQ_SANDBOX_PROCESSING_MAX_S": "0.5",
            "DROPQ_SANDBOX_PROCESSING_MIN_S": "0.1",
            "DROPQ_SANDBOX_ERROR_STATUSES": "503, 524",
            "DROPQ_SANDBOX_SEED": "",
        }
    )
    assert (config.port, config.api_key, config.processing_min_s, config.processing_max_s) == (9000, "k", 0.1, 0.5)
    assert config.error_statuses == (503, 524)
    assert env_name("webhook_loss_probability") == "DROPQ_SANDBOX_WEBHOOK_LOSS_PROBABILITY"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"error_probability": 1.5}, "error_probability must be a probability between 0 and 1, got 1.5"),
        ({"rate_limit": "many"}, "rate_limit must be an integer, got 'many'"),
        ({"processing_min_s": 5, "processing_max_s": 1}, "processing_max_s must be at least processing_min_s"),
        ({"error_statuses": "418"}, "error_statuses must be a non-empty list taken from 500, 503, 504, 524"),
        ({"slow_s": -1}, "slow_s must be a duration of 0 s or more"),
        ({"colour": "red"}, "colour must be a known knob"),
        ({"rate_limit": True}, "rate_limit must be an integer, got True"),
    ],
)
def test_a_bad_change_names_the_knob_and_the_expectation(changes: dict[str, object], message: str) -> None:
    """Bad values are refused with a message a person can act on."""
    with pytest.raises(SandboxConfigError) as caught:
        SandboxConfig().replace(**changes)
    assert str(caught.value).startswith(message)


def test_the_api_key_is_in_no_repr_and_no_public_view() -> None:
    """The key stays out of repr and out of the config the control endpoint shows."""
    config = SandboxConfig(api_key="top-secret-key")
    assert "top-secret-key" not in repr(config)
    assert "api_key" not in config.to_public_dict()


def test_config_errors_survive_pickling() -> None:
    """The error crosses process boundaries intact."""
    error = SandboxConfigError("rate_limit", "x", "an integer")
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


def test_knobs_list_every_field_with_its_variable() -> None:
    """The --help table comes from here: one row per knob."""
    names = [row[0] for row in SandboxConfig.knobs()]
    assert names == list(SandboxConfig.__dataclass_fields__)
    assert all(row[1] == "DROPQ_SANDBOX_" + row[0].upper() for row in SandboxConfig.knobs())
