"""Secrets from ``{VARIABLE}_FILE`` (Docker and Kubernetes secrets), the Redis password, and what is scrubbed."""

from __future__ import annotations

from pathlib import Path

import pytest

from dropq.config.settings import SECRET_VARS, SettingsError, from_env


def test_every_secret_variable_has_a_file_variant(tmp_path: Path) -> None:
    """The API key, digest secret, Redis password, both URLs and Flower's auth each read from {name}_FILE."""
    values = {
        "DROPCONTACT_API_KEY": "key-from-a-file",
        "DROPQ_DIGEST_SECRET": "digest-from-a-file",
        "REDIS_URL": "redis://:pw-in-url@redis:6379/0",
        "CELERY_BROKER_URL": "amqp://u:amqp-pw@rabbit:5672//",
        "REDIS_PASSWORD": "ignored-here",
        "FLOWER_BASIC_AUTH": "admin:flower-pw",
    }
    assert set(SECRET_VARS) == set(values)
    env = {}
    for name, value in values.items():
        (tmp_path / name).write_text(value + "\n")  # `echo value > file` leaves a newline
        env[f"{name}_FILE"] = str(tmp_path / name)
    settings = from_env(env)
    assert settings.api_key == "key-from-a-file"
    assert settings.digest_secret == "digest-from-a-file"
    assert settings.redis_url == "redis://:pw-in-url@redis:6379/0"  # a URL's own password stands
    assert settings.broker_url == "amqp://u:amqp-pw@rabbit:5672//"
    assert settings.flower_basic_auth == "admin:flower-pw"
    assert {"key-from-a-file", "pw-in-url", "amqp-pw", "flower-pw"} <= set(settings.secrets)


def test_the_redis_password_goes_into_redis_urls_only() -> None:
    """REDIS_PASSWORD is added, URL-quoted, to REDIS_URL and a Redis broker without one; never shown in repr."""
    settings = from_env({"REDIS_URL": "redis://redis:6379/0", "REDIS_PASSWORD": "p@ss/word"})
    assert settings.redis_url == "redis://:p%40ss%2Fword@redis:6379/0"
    assert settings.effective_broker_url == settings.redis_url
    assert "p%40ss" not in repr(settings) and "p@ss" not in repr(settings)
    amqp = from_env({"CELERY_BROKER_URL": "amqp://guest:guest@rabbit//", "REDIS_PASSWORD": "pw12"})
    assert amqp.broker_url == "amqp://guest:guest@rabbit//" and amqp.redis_url == "redis://:pw12@localhost:6379/0"


def test_a_variable_and_its_file_together_are_refused(tmp_path: Path) -> None:
    """Both DROPCONTACT_API_KEY and DROPCONTACT_API_KEY_FILE: which one wins would be a guess."""
    (tmp_path / "key").write_text("k")
    with pytest.raises(SettingsError, match="DROPCONTACT_API_KEY_FILE must be unset while DROPCONTACT_API_KEY"):
        from_env({"DROPCONTACT_API_KEY": "k2", "DROPCONTACT_API_KEY_FILE": str(tmp_path / "key")})


def test_a_missing_secret_file_names_the_variable_and_the_path_not_a_value(tmp_path: Path) -> None:
    """A file that cannot be read stops start-up with the variable and its path."""
    with pytest.raises(SettingsError, match=r"REDIS_PASSWORD_FILE must be a readable file \(No such file"):
        from_env({"REDIS_PASSWORD_FILE": str(tmp_path / "nope")})


def test_a_non_secret_variable_has_no_file_variant(tmp_path: Path) -> None:
    """Only secrets read files: DROPQ_RATE_LIMIT_FILE is no setting of ours."""
    (tmp_path / "rate").write_text("5")
    assert from_env({"DROPQ_RATE_LIMIT_FILE": str(tmp_path / "rate")}).rate_limit == 60


def test_flower_auth_must_be_user_password_pairs() -> None:
    """A malformed FLOWER_BASIC_AUTH is refused without echoing it."""
    with pytest.raises(SettingsError) as info:
        from_env({"FLOWER_BASIC_AUTH": "justapassword"})
    assert "justapassword" not in str(info.value)
