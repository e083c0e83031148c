"""Readers are registered like operators: a plugin reader is named by a job file or found by its
own `sniff`; a reader that fails part-way leaves its shard unaccounted, and stats.json says so."""
from __future__ import annotations

import pytest

from engine.errors import JobError
from jobs.runjob import run_job, validate_job

PLUGIN = ["decant_test_plugins"]


def lines_file(path, n):
    path.write_text("#lines\n" + "".join(f"line number {i}\n" for i in range(n)))
    return str(path)


@pytest.mark.parametrize("fmt", ["test_lines", "auto"])
def test_plugin_reader_by_name_or_sniffed(tmp_path, fmt):
    src = lines_file(tmp_path / "a.txt", 5)  # no telling suffix: `auto` must sniff the content
    stats = run_job({"plugins": PLUGIN, "input": {"format": fmt}, "pipeline": [], "executor": {"workers": 1}},
                    inputs=[src], out=str(tmp_path / "o"))
    assert stats["total"]["documents_kept"] == 5 and stats["total"]["accounting_ok"]
    assert stats["reader"]["formats"] == {"test_lines": 1}


def test_unknown_format_is_an_error_naming_its_place():
    with pytest.raises(JobError, match="input.format: unknown format 'nope'"):
        validate_job({"input": {"format": "nope"}})


def test_a_reader_that_fails_part_way_makes_the_accounting_false(tmp_path):
    good, bad = lines_file(tmp_path / "good.txt", 4), lines_file(tmp_path / "bad.txt", 6)
    stats = run_job({"plugins": PLUGIN, "input": {"format": "test_lines", "options": {"crash_after": 3}},
                     "pipeline": [], "executor": {"workers": 1}}, inputs=[good, bad], out=str(tmp_path / "o"))
    # good.txt has 4 lines: it crashes there too after 3; both shards are named, nothing adds up
    assert stats["reader"]["failed_shards"] == ["bad.txt", "good.txt"]
    assert stats["total"]["documents_read"] == 6 == stats["total"]["documents_kept"]
    assert stats["total"]["accounting_ok"] is False
    assert any("reader failed: RuntimeError: reader bug" in e for e in stats["reader"]["errors"])
