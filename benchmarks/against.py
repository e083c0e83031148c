"""against: a new snapshot deduplicated against an earlier output's index (`--against`).

Snapshot A: documents of real sentences (75 languages) plus near copies of some of them. Snapshot B: new passages, copies
of A's documents at edit rates from 0 (exact, case and spacing changed) to 40%, and copies of
B's own documents. The job is exact_dedup -> minhash_dedup (defaults: threshold 0.8, 112
permutations). Measured in the same run:

- cost of B alone, of B against A (what the index adds), and of the single run over A+B that
  would give the same result without an index (A processed again);
- the cross-snapshot duplicates B drops (rejects naming A) against the truth: every B document
  whose exact 5-shingle Jaccard with some document of A is >= 0.8 (brute force, sparse product);
- that B's kept documents are exactly those the single run keeps from B.
"""
from __future__ import annotations

import json
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.corpora.documents import docs_from_text, edit_words
from benchmarks.corpora.text_pools import lingua_languages, wikitext_raw
from benchmarks.e2e import run_pipeline
from benchmarks.minhash_dedup import THRESHOLD, brute_force_pairs

DESCRIPTION = "B against A's dedup index: cost with/without --against vs re-running A+B; cross-snapshot P/R vs brute force"
QUICK = True

PIPELINE = [{"exact_dedup": {}}, {"minhash_dedup": {"threshold": THRESHOLD}}]
RATES = [0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4]


def snapshots(n: int, seed: int = 14) -> tuple[dict[str, str], dict[str, str]]:
    """(A, B) as id -> text: A has n documents of real sentences (lingua's 75 languages and
    WikiText-2 for English, ~1 KB each, no sentence repeated) and n/5 near copies of them; B has n
    new documents, n/2 copies of A's (edit rate drawn from RATES; rate 0 is an exact copy with its
    spacing and punctuation changed) and n/5 copies of its own."""
    vocab = wikitext_raw().split()
    rng = random.Random(seed)
    originals = docs_from_text(2 * n, 1000, seed, list(lingua_languages()))

    def copy_of(text: str, rate: float) -> str:
        if rate == 0:
            return text.replace(" ", "  ") + " !"
        return " ".join(edit_words(text.split(), rate, rng, vocab, min_edits=1))

    a = {f"a{k:06d}": originals[2 * k] for k in range(n)}
    for k in range(n // 5):
        a[f"a-copy{k:06d}"] = copy_of(a[f"a{rng.randrange(n):06d}"], rng.choice(RATES[1:4]))
    b = {f"b{k:06d}": originals[2 * k + 1] for k in range(n)}
    a_ids = sorted(a)
    for k in range(n // 2):
        b[f"b-copyA{k:06d}"] = copy_of(a[rng.choice(a_ids)], rng.choice(RATES))
    for k in range(n // 5):
        b[f"b-copyB{k:06d}"] = copy_of(b[f"b{rng.randrange(n):06d}"], rng.choice(RATES))
    return a, b


def write_shards(docs: dict[str, str], folder: Path, shards: int) -> list[str]:
    items = sorted(docs.items())
    random.Random(str(folder.name)).shuffle(items)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in range(shards):
        p = folder / f"part-{s}.jsonl"
        p.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in items[s::shards]))
        paths.append(str(p))
    return paths


def cross_truth(a: dict[str, str], b: dict[str, str]) -> set[str]:
    """B documents with a true near-duplicate (5-shingle Jaccard >= THRESHOLD) in A."""
    ids = list(a) + list(b)
    pairs = brute_force_pairs([a.get(i) or b[i] for i in ids], THRESHOLD)
    na = len(a)
    return {ids[j] for i, j in pairs if i < na <= j}


def _reduce_seconds(stats: dict) -> float:
    ops = stats.get("operators") or {}
    return round(sum(float((ops.get(n) or {}).get("seconds") or 0) for n in ("exact_dedup", "minhash_dedup")), 3)


def _index_bytes(out: Path) -> int:
    return sum(p.stat().st_size for p in (out / "index").rglob("*") if p.is_file())


def run(quick: bool = True) -> dict[str, Any]:
    from operators.dedup.index import output_identity
    from operators.writers import read_documents, read_rejects

    n, repeats = (1000, 2) if quick else (3000, 3)
    workers = 2
    a, b = snapshots(n)
    tmp = Path(tempfile.mkdtemp(prefix="decant-bench-against-"))
    try:
        pa_ = write_shards(a, tmp / "in" / "a", 4)
        pb = write_shards(b, tmp / "in" / "b", 4)
        job = {"pipeline": PIPELINE}
        runs = {"B alone": (job, pb), "B against A": ({**job, "dedup": {"against": [str(tmp / "A")]}}, pb),
                "A+B again": (job, pa_ + pb)}
        res = {"A": run_pipeline(job, pa_, workers, str(tmp / "A"))}
        for r in range(repeats):  # interleaved, the fastest of each kept: the machine is shared
            for label, (spec, inputs) in runs.items():
                out = tmp / f"{label.replace(' ', '-')}-{r}"
                got = run_pipeline(spec, inputs, workers, str(out))
                if label in res and got["wall"] >= res[label]["wall"]:
                    shutil.rmtree(out, ignore_errors=True)
                    continue
                if label in res:
                    shutil.rmtree(res[label]["out"], ignore_errors=True)
                res[label] = {**got, "out": out}
        rows = []
        for label, r in res.items():
            st = r["stats"]
            rows.append({"run": label, "documents": st["total"]["documents_read"],
                         "kept": st["total"]["documents_kept"], "wall_s": round(r["wall"], 2),
                         "cpu_s": round(r["cpu"], 2), "dedup_reduce_s": _reduce_seconds(st)})
        # cross-snapshot duplicates: B's rejects that name A, against brute force
        rej = read_rejects(str(res["B against A"]["out"])).to_pylist()
        a_id = output_identity(str(tmp / "A"))
        predicted = {r["id"] for r in rej if r.get("kept_in") == a_id}
        truth = cross_truth(a, b)
        tp = len(predicted & truth)
        kept_b = set(read_documents(str(res["B against A"]["out"]), ["id"]).column("id").to_pylist())
        kept_ab = {i for i in read_documents(str(res["A+B again"]["out"]), ["id"]).column("id").to_pylist()
                   if i.startswith("b")}
        wall = {k: v["wall"] for k, v in res.items()}
        cpu = {k: v["cpu"] for k, v in res.items()}
        figures = {
            "cross_precision": round(tp / max(1, len(predicted)), 4),
            "cross_recall": round(tp / max(1, len(truth)), 4),
            "cross_true": len(truth), "cross_found": len(predicted),
            "same_as_single_run": kept_b == kept_ab,
            "wall_against_over_alone": round(wall["B against A"] / wall["B alone"], 3),
            "cpu_against_over_alone": round(cpu["B against A"] / cpu["B alone"], 3),
            "wall_rerun_over_against": round(wall["A+B again"] / wall["B against A"], 3),
            "cpu_rerun_over_against": round(cpu["A+B again"] / cpu["B against A"], 3),
            "reduce_against_over_alone": round(_reduce_seconds(res["B against A"]["stats"])
                                               / max(1e-9, _reduce_seconds(res["B alone"]["stats"])), 3),
            "index_bytes_A": _index_bytes(tmp / "A"),
            "index_over_input_bytes_A": round(_index_bytes(tmp / "A") / sum(Path(p).stat().st_size for p in pa_), 3),
            "documents_read_rerun_over_against": round((len(a) + len(b)) / len(b), 3),
        }
        return {
            "figures": figures, "rows": rows,
            "inputs": {"A_documents": len(a), "B_documents": len(b), "pipeline": PIPELINE, "workers": workers,
                       "edit_rates": RATES,
                       "source": "lingua sentences (75 languages), WikiText-2 for English and for edits"},
            "notes": [
                (f"B alone, B against A and A+B again each ran {repeats} times, interleaved; the fastest run of "
                 "each is shown"),
                ("cpu_s: this process and its worker processes; dedup_reduce_s: the exact_dedup and minhash_dedup "
                 "steps (map, reduce, apply) as stats.json counts them"),
                ("truth: B documents with J >= threshold to any A document (kept or removed by A); a B document "
                 "matched only through a chain of near copies (J below the threshold to every A document) counts "
                 "against precision"),
            ],
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
