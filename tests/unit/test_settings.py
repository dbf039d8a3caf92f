"""Settings from the environment: defaults, parsing and the errors that stop start-up."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from dropq.config.settings import Settings, SettingsError, from_env
from dropq.dropcontact.backoff import PollSchedule


def test_defaults_match_the_design_table() -> None:
    """An empty environment gives the documented defaults."""
    settings = from_env({})
    assert settings.api_key is None
    assert settings.api_url == "https://api.dropcontact.com"
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.effective_broker_url == "redis://localhost:6379/0"
    assert settings.rate_limit == 60
    assert Path(settings.destinations_path) == Path(__file__).resolve().parents[2] / "config" / "destinations.toml"
    assert settings.webhook_url is None


def test_broker_defaults_to_redis_url_and_can_be_amqp() -> None:
    """CELERY_BROKER_URL falls back to REDIS_URL and accepts amqp://."""
    assert from_env({"REDIS_URL": "redis://h:1/2"}).effective_broker_url == "redis://h:1/2"
    amqp = from_env({"CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//"})
    assert amqp.effective_broker_url.startswith("amqp://")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DROPQ_RATE_LIMIT", "abc", "DROPQ_RATE_LIMIT must be a positive number, got 'abc'"),
        ("DROPQ_RATE_LIMIT", "-3", "DROPQ_RATE_LIMIT must be a positive number, got '-3'"),
        ("DROPQ_RATE_LIMIT", "nan", "DROPQ_RATE_LIMIT must be a positive number, got 'nan'"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must be a URL starting with redis:// or rediss:// or unix://"),
        ("DROPCONTACT_API_URL", "ftp://x", "DROPCONTACT_API_URL must be a URL starting with http:// or https://"),
        ("DROPQ_RATE_MARGIN", "1.5", "DROPQ_RATE_MARGIN must be a number above 0 and at most 1, got '1.5'"),
        ("DROPQ_RATE_MARGIN", "0", "DROPQ_RATE_MARGIN must be a positive number, got '0'"),
        ("DROPQ_MAX_RETRIES", "1.5", "DROPQ_MAX_RETRIES must be a positive integer, got '1.5'"),
        ("DROPQ_LOG_LEVEL", "loud", "DROPQ_LOG_LEVEL must be one of debug, info, warning, error, got 'loud'"),
    ],
)
def test_a_bad_value_names_the_variable_the_value_and_the_expectation(variable: str, value: str, message: str) -> None:
    """Each bad value is refused with a message a person can act on."""
    with pytest.raises(SettingsError) as caught:
        from_env({variable: value})
    assert str(caught.value).startswith(message)
    assert caught.value.name == variable


def test_settings_error_survives_pickling() -> None:
    """The error crosses process boundaries intact."""
    error = SettingsError("DROPQ_RATE_LIMIT", "abc", "a positive number")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error)


def test_api_key_is_not_in_the_repr() -> None:
    """The token never shows in a repr, and so in no log line or traceback that prints settings."""
    settings = from_env({"DROPCONTACT_API_KEY": "super-secret-token"})
    assert settings.api_key == "super-secret-token"
    assert "super-secret-token" not in repr(settings)


def test_empty_values_count_as_unset() -> None:
    """An exported but empty variable falls back to the default."""
    assert from_env({"DROPQ_RATE_LIMIT": "  "}).rate_limit == 60


def test_replace_returns_a_changed_copy() -> None:
    """Settings are frozen; replace gives a modified copy."""
    base = Settings()
    changed = base.replace(rate_limit=5.0)
    assert changed.rate_limit == 5.0 and base.rate_limit == 60


def test_poll_factor_is_read_and_must_not_shrink_the_delays() -> None:
    """DROPQ_POLL_FACTOR sets the backoff growth; below 1 it is refused (delays would shrink to a storm)."""
    assert from_env({"DROPQ_POLL_FACTOR": "1"}).poll_factor == 1.0
    with pytest.raises(SettingsError) as caught:
        from_env({"DROPQ_POLL_FACTOR": "0.5"})
    assert str(caught.value) == "DROPQ_POLL_FACTOR must be a number of 1 or more, got '0.5'"


def test_poll_defaults_are_the_schedule_defaults() -> None:
    """The settings' poll defaults and PollSchedule's own defaults are one schedule."""
    settings = from_env({})
    schedule = PollSchedule()
    assert (settings.poll_first_s, settings.poll_base_s, settings.poll_factor, settings.poll_cap_s) == (
        schedule.first_s,
        schedule.base_s,
        schedule.factor,
        schedule.cap_s,
    )
    assert settings.poll_max_age_s == schedule.max_age_s


def test_the_rate_margin_default_is_the_limiters() -> None:
    """DROPQ_RATE_MARGIN's default is the limiter's own default margin."""
    from dropq.workers.limiter.gcra import DEFAULT_SAFETY_MARGIN

    assert from_env({}).rate_margin == DEFAULT_SAFETY_MARGIN
