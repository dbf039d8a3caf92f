"""Configuration: settings from the environment and the Celery configuration built from them."""

from __future__ import annotations

from dropq.config.settings import Settings, SettingsError, from_env

__all__ = ["Settings", "SettingsError", "from_env"]
