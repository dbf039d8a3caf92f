"""File destinations on a real file system: what they raise when they cannot write."""

from __future__ import annotations

import csv
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


@pytest.mark.parametrize(("escape", "expected"), [(True, "'=1+1"), (False, "=1+1")])
def test_the_csv_destination_neutralises_formula_cells_unless_told_not_to(
    tmp_path: Path, escape: bool, expected: str
) -> None:
    """An enriched field echoed by the API that starts with '=' gets a leading ' in the csv file, by default."""
    destination = CsvDestination("csv", tmp_path, escape_formulas=escape)
    record = {"first_name": "=1+1", "last_name": "-2", "email": [], "custom_fields": {}}
    outcome = {"job_id": "j", "index": 0, "status": "not_found", "reason": None, "record": record, "input": record}
    destination.deliver("j", "j/0/0", [outcome])
    destination.finish("j")
    rows = list(csv.DictReader((tmp_path / "j.csv").open(encoding="utf-8", newline="")))
    assert rows[0]["first_name"] == expected
    assert rows[0]["last_name"] == ("'-2" if escape else "-2")
