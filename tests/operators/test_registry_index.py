"""operators/registry_index.py says where each operator is, so that a job imports only the ones it
names: it must agree with importing every module, and an unindexed or unknown name must still work
or fail as without an index. Each case runs in a fresh interpreter (registration is per process)."""
from __future__ import annotations

import json
import subprocess
import sys

from operators import registry_index


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def test_index_matches_importing_every_module():
    found = _run("""
import json
from engine import registry
registry._walk(__import__("operators"))
print(json.dumps({k: {n: c.__module__ for n, c in t.items()} for k, t in registry._TABLES.items()}))
""")
    assert found["operator"] == registry_index.OPERATORS
    engine_writers = {m for m in found["writer"].values() if m.startswith("engine.")}
    assert set(found["reader"].values()) | set(found["writer"].values()) - engine_writers == set(registry_index.EAGER)


def test_a_job_imports_only_the_operators_it_names():
    seen = _run("""
import json, sys
from jobs.runjob import validate_job
validate_job({"pipeline": [{"minhash_dedup": {}}]})
print(json.dumps(sorted(m for m in sys.modules if m.startswith("operators."))))
""")
    assert "operators.dedup.minhash_dedup" in seen and "operators.readers.warc" in seen
    assert not {"operators.filters.quality.operator", "operators.langid", "operators.extract"} & set(seen)


def test_unindexed_name_imports_the_package_and_unknown_name_lists_all():
    got = _run("""
import json
from engine import registry
registry.discover(["operators"])
registry._INDEXED.pop("quality")  # as if someone added the operator without indexing it
cls = registry.get_operator("quality")
try:
    registry.get_operator("nope")
except KeyError as e:
    msg = e.args[0]
print(json.dumps({"module": cls.__module__, "msg": msg}))
""")
    assert got["module"] == "operators.filters.quality.operator"
    assert all(name in got["msg"] for name in registry_index.OPERATORS)
