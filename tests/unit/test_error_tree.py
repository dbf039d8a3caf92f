"""One error tree: every exception class dropq defines hangs under DropqError and survives serialization."""

from __future__ import annotations

import importlib
import inspect
import pickle
from pathlib import Path

import pytest

from dropq.errors import DropqError, InvalidValueError

ROOT = Path(__file__).resolve().parents[2]
# The folders that install as dropq.X (pyproject.toml's package-dir).
_PACKAGES = ("cli", "config", "dropcontact", "tasks", "workers")


def _modules() -> list[str]:
    names = ["dropq.errors"]
    for top in _PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] in ("__init__", "__main__"):
                parts = parts[:-1]
            names.append(".".join(("dropq", *parts)))
    return names


def _exception_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _modules():
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            # A private class (_ConnectionDropped) is control flow inside one module and never escapes it.
            if issubclass(value, BaseException) and value.__module__ == name and not value.__name__.startswith("_"):
                found[f"{name}.{value.__qualname__}"] = value
    return [found[key] for key in sorted(found)]


EXCEPTIONS = _exception_classes()


def test_the_tree_is_not_empty() -> None:
    """The scan finds the classes it is meant to check (a broken scan would pass every other test)."""
    names = {cls.__name__ for cls in EXCEPTIONS}
    assert {"SettingsError", "JobOptionsError", "TransitionRefused", "CliError", "DropcontactError"} <= names


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda cls: cls.__qualname__)
def test_every_exception_hangs_under_dropq_error(cls: type[BaseException]) -> None:
    """No second root: catching DropqError catches everything dropq raises."""
    assert issubclass(cls, DropqError), f"{cls.__module__}.{cls.__qualname__} is not a DropqError"


@pytest.mark.parametrize(
    "cls", [cls for cls in EXCEPTIONS if issubclass(cls, InvalidValueError)], ids=lambda cls: cls.__qualname__
)
def test_every_wrong_value_is_said_the_same_way_and_survives_serialization(cls: type[InvalidValueError]) -> None:
    """Name, value (!r) and expectation, and the same after pickling or Celery's JSON rebuild."""
    error = cls("DROPQ_X", "abc", "a positive number")
    assert str(error) == "DROPQ_X must be a positive number, got 'abc'"
    for copy in (pickle.loads(pickle.dumps(error)), cls(*error.args)):
        assert type(copy) is cls
        assert (copy.name, copy.value, copy.expected, str(copy)) == (
            error.name,
            error.value,
            error.expected,
            str(error),
        )
