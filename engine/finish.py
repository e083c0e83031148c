"""The end of a run: every unit's record merged into OUT/stats.json, intermediates removed."""
from __future__ import annotations

from engine import io as eio
from engine.graph import Graph
from engine.metrics import peak_rss
from engine.plan import JobPlan
from engine.stats import JobStats, UnitStats


def finish(plan: JobPlan, graph: Graph, wall_seconds: float, keep_work: bool = False) -> JobStats:
    manifest = eio.Manifest(plan.work.manifest)
    units = [UnitStats.from_dict(manifest.get(u)) for u in manifest.units()]
    stats = JobStats.merge(units, graph.operator_names)
    stats.job = {"name": plan.spec.name, "inputs": len(plan.inputs), "fingerprint": plan.fingerprint,
                 "wall_seconds": round(wall_seconds, 3), "stages": [repr(s) for s in graph.stages],
                 **peak_rss([u.worker for u in units])}
    stats.input = {"files": len(plan.inputs), "skipped": dict(plan.skipped_inputs)}
    eio.write_json_atomic(stats.to_dict(), f"{plan.out}/stats.json")
    if not keep_work:
        for s in graph.stages:
            eio.remove(plan.work.stage_dir(s.index))
            for op in s.map_ops:  # map output, apply tables, the operators' own files
                eio.remove(plan.work.global_dir(s.index, op.name).root)
        eio.remove(plan.work.staging_root)
    return stats
