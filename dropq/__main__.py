"""``python -m dropq``: the same as the ``dropq`` console script."""

from __future__ import annotations

from dropq.cli import main

if __name__ == "__main__":
    main()
