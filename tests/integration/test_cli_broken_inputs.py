"""A corpus of broken input files through ``dropq enrich``: count in equals count out on each, in order.

Each file holds rows a person would count; every one of them comes back, in
input order, the unreadable ones with their line number and the rule they
break, and with what could be kept of their cells.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli_enrich import run_dropq
from tests.support.pipeline import worker_env

HEADER = b"ID,First Name,Last Name,Website\n"
HUGE = b"x" * (5 * 1024 * 1024)

# name -> (bytes of the file, the IDs of its rows as a person counts them, the unreadable ones)
CORPUS: dict[str, tuple[bytes, list[str], set[str]]] = {
    "nul_byte": (
        HEADER + b"r1,Ada,L,a.example\nr2,A\x00da,L,b.example\nr3,Bo,L,c.example\n",
        ["r1", "r2", "r3"],
        {"r2"},
    ),
    "invalid_utf8": (
        HEADER + b"r1,Ada,L,a.example\nr2,\xff\xfeda,L,b.example\nr3,Bo,L,c.example\n",
        ["r1", "r2", "r3"],
        {"r2"},
    ),
    "ragged_rows": (HEADER + b"r1,Ada\nr2,Bo,L,b.example,one too many\nr3\n", ["r1", "r2", "r3"], {"r2"}),
    "crlf_multiline_cells": (
        b'ID,First Name,Last Name,Website\r\nr1,"Ada\r\nsecond line",L,a.example\r\nr2,Bo,L,b.example\r\n',
        ["r1", "r2"],
        set(),
    ),
    "huge_cell": (HEADER + b"r1," + HUGE + b",L,a.example\nr2,Bo,L,b.example\n", ["r1", "r2"], {"r1"}),
    "unterminated_quote": (
        HEADER + b'r1,A1,S1,a.example\nr2,"A2,S2,b.example\nr3,A3,S3,c.example\nr4,A4,S4,d.example\n',
        ["r1", "r2", "r3", "r4"],
        {"r2"},
    ),
}


@pytest.fixture
def cli_env(redis_url: str, sandbox: Any, start_worker: Any, tmp_path: Path) -> dict[str, str]:
    """One worker on the private Redis and the sandbox."""
    env = worker_env(redis_url, sandbox, tmp_path)
    start_worker(env)
    return env


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_row_of_a_broken_file_comes_back_in_order(cli_env: dict[str, Any], tmp_path: Path, name: str) -> None:
    """NUL bytes, invalid UTF-8, ragged rows, CRLF multi-line cells, a 5 MB cell, an unterminated quote."""
    # Given
    content, ids, unreadable = CORPUS[name]
    source = tmp_path / f"{name}.csv"
    source.write_bytes(content)
    output = tmp_path / f"{name}-out.csv"
    # When
    done = run_dropq(["enrich", str(source), "-o", str(output), "-q"], cli_env)
    # Then
    assert done.returncode in (0, 1), done.stderr
    with output.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["ID"] for row in rows] == ids, "count in = count out, in input order, IDs kept"
    bad = {row["ID"] for row in rows if row["reason"].startswith("line ") and "unreadable row" in row["reason"]}
    assert bad == unreadable
    assert all(len(row["reason"]) < 300 for row in rows)


def test_a_header_of_delimiters_only_is_refused_as_a_whole(cli_env: dict[str, Any], tmp_path: Path) -> None:
    """A BOM and a header naming no column: the file is refused with a clear error, nothing is sent."""
    source = tmp_path / "no-header.csv"
    source.write_bytes(b"\xef\xbb\xbf,,,\nr1,Ada,L,a.example\n")
    done = run_dropq(["enrich", str(source), "-o", str(tmp_path / "out.csv"), "-q"], cli_env)
    assert done.returncode != 0
    assert "line 1 must be a header naming the columns" in done.stderr
    assert not (tmp_path / "out.csv").exists()
