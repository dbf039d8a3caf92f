"""Lay out build/namespace/dropq/: the installed package's shape, as links to the repository's files.

setuptools maps each top-level folder X/ to dropq.X (pyproject.toml's package-dir), and
editable installs follow that mapping at run time; mypy and import-linter cannot, since both
look for one folder per package. This tree gives them one: real folders, each file a link
to its source, so an error names a file that is the one in the repository.

Run: python .ci/namespace_view.py (make types and make contracts do).
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIEW = ROOT / "build" / "namespace"


def main() -> int:
    """Rebuild the tree from the package-dir mapping; return the exit status."""
    mapping: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    shutil.rmtree(VIEW, ignore_errors=True)
    for package, folder in mapping.items():
        target = VIEW.joinpath(*package.split("."))
        for source in (ROOT / folder).rglob("*"):
            if source.is_dir() or "__pycache__" in source.parts:
                continue
            link = target / source.relative_to(ROOT / folder)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
