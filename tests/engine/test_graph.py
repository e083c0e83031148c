"""Job files: validation errors that name the place, --set overrides, the default job."""
from __future__ import annotations

import pytest

from engine.errors import JobError
from engine.job import apply_sets, load_job
from jobs.paths import DEFAULT_JOB
from jobs.runjob import validate_job as build
import decant_test_plugins  # noqa: F401  (registers the test operators in this process too)


def test_validation_names_the_place():
    with pytest.raises(JobError, match=r"pipeline\[1\]\.nonexistent: unknown operator"):
        build({"pipeline": [{"test_drop_sevens": {}}, {"nonexistent": {}}]})
    with pytest.raises(JobError, match=r"plugins\[0\]: cannot import"):
        build({"plugins": ["no_such_module_xyz"]})
    with pytest.raises(JobError, match=r"pipeline\[0\]\.test_drop_sevens\.bogus"):
        build({"pipeline": [{"test_drop_sevens": {"bogus": 1}}]})
    with pytest.raises(JobError, match=r"outptu"):
        build({"outptu": {}})
    with pytest.raises(JobError, match=r"executor\.workers"):
        build({"executor": {"workers": 0}})


def test_set_overrides_address_steps_by_name_and_index():
    data = {"pipeline": [{"a": {"x": 1}}, {"b": None}], "executor": {"workers": 2}}
    out = apply_sets(data, ["pipeline.a.x=3", "pipeline.1.b.y=[1, 2]", "executor.workers=4", "output.format=jsonl"])
    assert out["pipeline"][0]["a"]["x"] == 3
    assert out["pipeline"][1]["b"]["y"] == [1, 2]
    assert out["executor"]["workers"] == 4 and out["output"]["format"] == "jsonl"
    assert data["pipeline"][0]["a"]["x"] == 1  # the original is untouched
    with pytest.raises(JobError):
        apply_sets(data, ["pipeline.zzz.x=1"])


def test_default_job_file_validates():
    build(load_job(DEFAULT_JOB))
