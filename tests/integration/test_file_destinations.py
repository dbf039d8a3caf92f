"""File destinations on a real file system: what they raise when they cannot write."""

from __future__ import annotations

from pathlib import Path

import pytest

from dropq.workers.destinations.base import DestinationError
from dropq.workers.destinations.files import CsvDestination, JsonlDestination


@pytest.mark.parametrize("kind", [JsonlDestination, CsvDestination])
def test_finishing_into_an_unwritable_directory_raises_a_destination_error(
    kind: type[JsonlDestination], tmp_path: Path
) -> None:
    """A job with no part written finishes into a directory under a regular file: our error, not an OSError."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file\n")
    destination = kind("broken", blocker / "out")
    with pytest.raises(DestinationError, match="cannot write"):
        destination.finish("job-1")
