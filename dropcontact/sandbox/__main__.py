"""``python -m dropq.dropcontact.sandbox``: the same as ``dropq sandbox``, without the rest of the CLI."""

from __future__ import annotations

from dropq.dropcontact.sandbox.cli import sandbox_command

if __name__ == "__main__":
    sandbox_command()
