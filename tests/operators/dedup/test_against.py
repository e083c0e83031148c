"""Dedup against earlier outputs (`dedup.against`, `--against`), end to end through real jobs.

Snapshot A, then snapshot B (its own documents plus exact and near copies of A's, copies of
documents A itself removed, and copies of each other) run with `--against A`: B's output holds
exactly the documents a single run over A+B keeps from B, its rejects name A and the document
that matched, and nothing in A changes. Then C against A and B (a chain), other partition counts,
cluster sizes across the chain, refused indexes, a redone reduce, worker counts and Ray.

Documents are real text: WikiText-2 passages (paragraphs of 40 words), lingua sentences (de, fr)
and UD sentences (ru, en)."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from benchmarks.corpora.documents import edit_words
from engine import io as eio
from engine.errors import JobError
from jobs.runjob import plan_job, run_job
from operators.dedup.clusters import CLUSTER_SIZE, cluster_sizes
from operators.dedup.index import output_identity
from operators.writers import read_documents, read_rejects
from support import SHARED_DATA, lingua_lines, shingle_jaccard, wikitext_words

EXACT_MINHASH = [{"exact_dedup": {}}, {"minhash_dedup": {}}]
LINES_EXACT_VERIFIED = [{"line_dedup": {}}, {"exact_dedup": {}}, {"minhash_dedup": {"verify": True}}]
COMPARED = ["text", CLUSTER_SIZE, "line_dedup_length", "line_dedup_nlines"]


# ------------------------------------------------------------------------------------ snapshots

def ud_lines(lang: str) -> list[str]:
    text = (SHARED_DATA / "text" / "ud" / f"{lang}.txt").read_text(encoding="utf-8")
    return [ln.strip() for ln in text.split("\n") if ln.strip()]


class Snapshots:
    """Three snapshots of real documents; `kind[id]` says what each document is a copy of."""

    def __init__(self) -> None:
        rng = random.Random(14)
        self.vocab = wikitext_words(SHARED_DATA)
        self.rng = rng
        self.kind: dict[str, tuple[str, str | None]] = {}
        mixed = {lang: lingua_lines(SHARED_DATA, lang) for lang in ("de", "fr")}
        ud = {lang: ud_lines(lang) for lang in ("ru", "en")}
        A: dict[str, str] = {}
        for i in range(30):
            A[f"a{i:03d}"] = self.passage(i)
        for i in range(6):
            lang = ("de", "fr")[i % 2]
            A[f"a-lingua{i}"] = "\n".join(mixed[lang][i * 8:(i + 1) * 8])
        for i in range(3):                                    # near copies A itself removes
            A[f"a-near{i}"] = self.near(A[f"a{i:03d}"])
        A["a-exact3"] = A["a003"].lower()
        B: dict[str, str] = {}
        for i in range(20):
            B[f"b{i:03d}"] = self.passage(100 + i)
        for i in range(6):
            lang = ("ru", "en")[i % 2]
            B[f"b-ud{i}"] = "\n".join(ud[lang][i * 8:(i + 1) * 8])
        for i in range(5, 9):
            B[f"b-exactA{i}"] = A[f"a{i:03d}"].upper().replace(".", " . ")
        B["b-exactA-lingua"] = A["a-lingua1"] + "\n"
        for i in range(10, 15):
            B[f"b-nearA{i}"] = self.near(A[f"a{i:03d}"])
        for i in range(2):                                    # near copies of documents A removed
            B[f"b-nearAremoved{i}"] = self.near(A[f"a-near{i}"])
        B["b-exactB0"] = B["b000"] + "  "
        B["b-nearB1"] = self.near(B["b001"])
        B["b-nearB2"] = self.near(B["b002"])
        for i in range(2):                                    # a new paragraph plus one of A's
            B[f"b-linesA{i}"] = self.passage(200 + i) + "\n" + A[f"a{20 + i:03d}"].split("\n")[0]
        C: dict[str, str] = {}
        for i in range(10):
            C[f"c{i:03d}"] = self.passage(300 + i)
        C["c-exactA"] = A["a022"]
        C["c-nearA"] = self.near(A["a023"])
        C["c-exactB"] = B["b005"].replace(" ", "  ")
        C["c-nearB"] = self.near(B["b006"])
        C["c-nearBremoved"] = self.near(B["b-nearA12"], 1)   # B removed it against A
        C["c-exactBremoved"] = B["b-nearA12"].lower()
        C["c-nearC"] = self.near(C["c000"])
        self.docs = {"a": A, "b": B, "c": C}

    def passage(self, i: int) -> str:
        start = 2000 + i * 700
        words = self.vocab[start:start + self.rng.randrange(160, 260)]
        return "\n".join(" ".join(words[j:j + 40]) for j in range(0, len(words), 40))

    def near(self, text: str, edits: int = 2) -> str:
        """One word edited (replaced, deleted or inserted) in each of `edits` paragraphs: with two,
        about 1% of the words of a passage, a 5-shingle Jaccard near 0.9."""
        paras = text.split("\n")
        for j in self.rng.sample(range(len(paras)), min(edits, len(paras))):
            paras[j] = " ".join(edit_words(paras[j].split(), 0.0, self.rng, self.vocab, min_edits=1))
        return "\n".join(paras)

    def write(self, root: Path) -> dict[str, list[str]]:
        """Each snapshot as JSONL shards under root/<name>/ (a: 2, b: 3, c: 2); ids in a random order."""
        paths = {}
        for name, nshards in (("a", 2), ("b", 3), ("c", 2)):
            items = sorted(self.docs[name].items())
            random.Random(name).shuffle(items)
            folder = root / name
            folder.mkdir(parents=True)
            paths[name] = []
            for s in range(nshards):
                p = folder / f"shard-{s}.jsonl"
                p.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in items[s::nshards]))
                paths[name].append(str(p))
        return paths


@pytest.fixture(scope="module")
def snap(tmp_path_factory, shared_data) -> tuple[Snapshots, dict[str, list[str]]]:
    s = Snapshots()
    return s, s.write(tmp_path_factory.mktemp("snapshots"))


def job(pipeline: list[dict], partitions: int | None = None, against: list = (), workers: int = 2) -> dict:
    steps = [{k: dict(v, partitions=partitions) if partitions else dict(v)} for step in pipeline for k, v in step.items()]
    spec = {"pipeline": steps, "executor": {"workers": workers, "batch_size": 16}}
    if against:
        spec["dedup"] = {"against": [str(a) for a in against]}
    return spec


def run(spec: dict, inputs: list[str], out: Path, **kw) -> dict:
    stats = run_job(spec, inputs=inputs, out=str(out), **kw)
    assert stats["total"]["accounting_ok"]
    return stats


def kept(out: Path) -> dict[str, dict]:
    return {r["id"]: r for r in read_documents(str(out)).to_pylist()}


def rejects(out: Path) -> dict[str, dict]:
    rows = read_rejects(str(out)).to_pylist()
    assert len({r["id"] for r in rows}) == len(rows)
    return {r["id"]: r for r in rows}


def tree(out: Path) -> dict[str, tuple[int, int]]:
    """Every file of an output with its size and mtime (nothing may change it)."""
    return {str(p.relative_to(out)): (p.stat().st_size, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}


def assert_b_as_in_single_run(b_out: Path, single: Path, prefix: str, snapshot: dict[str, str]) -> None:
    """The documents of the snapshot kept by the run against earlier outputs are those the single
    run keeps, row for row; the others are in the rejects of both."""
    mine = kept(b_out)
    theirs = {i: r for i, r in kept(single).items() if i.startswith(prefix)}
    assert sorted(mine) == sorted(theirs)
    for i in mine:
        assert {c: mine[i].get(c) for c in COMPARED} == {c: theirs[i].get(c) for c in COMPARED}, i
    rej = rejects(b_out)
    assert set(rej) | set(mine) == set(snapshot) and not set(rej) & set(mine)
    assert set(rej) == {i for i in rejects(single) if i.startswith(prefix)}


# ------------------------------------------------------------------------------------ the done test

@pytest.fixture(scope="module")
def runs(snap, tmp_path_factory):
    """A, B against A and the single run over A+B, for two pipelines; A and B with other
    partition counts (B re-partitions A's index)."""
    _, paths = snap
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name, pipeline, (pa_, pb) in (("exact", EXACT_MINHASH, (16, 5)), ("lines", LINES_EXACT_VERIFIED, (4, 6))):
        a, b, ab = root / f"{name}-A", root / f"{name}-B", root / f"{name}-AB"
        run(job(pipeline, pa_), paths["a"], a)
        before = tree(a)
        run(job(pipeline, pb, against=[a]), paths["b"], b)
        assert tree(a) == before                       # nothing in the earlier output is rewritten
        run(job(pipeline, pb), paths["a"] + paths["b"], ab)
        out[name] = (a, b, ab)
    return out


@pytest.mark.parametrize("name", ["exact", "lines"])
def test_b_against_a_keeps_what_a_single_run_keeps(snap, runs, name):
    s, _ = snap
    a, b, ab = runs[name]
    assert_b_as_in_single_run(b, ab, "b", s.docs["b"])
    a_docs, a_kept, a_id = s.docs["a"], kept(a), output_identity(str(a))
    rej = rejects(b)
    previous = {i: r for i, r in rej.items() if r["kept_in"] is not None}
    # every match with A names A and an A document; for exact and near copies a document A kept
    assert previous and all(r["kept_in"] == a_id and r["reason"].endswith("_of_previous") for r in previous.values())
    for i, r in previous.items():
        assert r["kept_id"] in a_docs, (i, r)
        if r["operator"] != "line_dedup":
            assert r["kept_id"] in a_kept, (i, r)
            assert shingle_jaccard(s.docs["b"][i], a_docs[r["kept_id"]]) >= 0.6, (i, r)
    # rejects inside B name a document B kept
    for i, r in rej.items():
        if r["kept_in"] is None and r["operator"] in ("exact_dedup", "minhash_dedup"):
            assert r["kept_id"] in kept(b), (i, r)
    # every exact copy of A is matched with A; copies of documents A removed match A's kept ones
    exact_a = [i for i in s.docs["b"] if i.startswith("b-exactA")]
    assert all(i in previous for i in exact_a)
    if name == "exact":
        assert {previous[i]["reason"] for i in exact_a} == {"exact_duplicate_of_previous"}
        assert previous["b-exactA5"]["kept_id"] == "a005"
        near_a = [i for i in s.docs["b"] if i.startswith("b-near")  and "A" in i]
        assert sum(i in previous for i in near_a) >= len(near_a) - 1
        assert {previous[i]["reason"] for i in near_a if i in previous} == {"near_duplicate_of_previous"}
    else:
        assert {previous[i]["reason"] for i in exact_a} == {"all_lines_duplicate_of_previous"}
        # a shared paragraph is removed from the document, which stays
        for i in ("b-linesA0", "b-linesA1"):
            assert i in kept(b) and kept(b)[i]["line_dedup_nlines"] == s.docs["b"][i].count("\n")
    # of B's own exact copies, the one later in B's order goes, naming the other, in B
    pair = {"b000", "b-exactB0"}
    gone = [i for i in pair if i in rej]
    assert len(gone) == 1 and rej[gone[0]]["kept_in"] is None
    assert rej[gone[0]]["kept_id"] == (pair - set(gone)).pop()


def test_duplicates_file_and_index_name_the_earlier_output(runs):
    a, b, _ = runs["exact"]
    dups = eio.read_parquet(str(b / "duplicates.parquet"))
    assert dups.schema.names == ["id", "cluster_id", "kept_id", "kept_in"]
    prev = dups.filter(pc.is_valid(dups.column("kept_in")))
    assert prev.num_rows > 0 and set(prev.column("kept_in").to_pylist()) == {output_identity(str(a))}
    meta = eio.read_json(str(b / "index" / "minhash_dedup" / "meta.json"))
    assert meta["partitions"] == 5 and meta["refers_to"] == [output_identity(str(a))]
    assert {k: meta["params"][k] for k in ("threshold", "ngram", "num_perm", "seed")} == {
        "threshold": 0.8, "ngram": 5, "num_perm": 112, "seed": 1}
    # the kept table of B's index is B's kept documents with their cluster sizes
    kt = pa.concat_tables([eio.read_parquet(f) for f in eio.listdir_files(str(b / "index/minhash_dedup/kept"), ".parquet")])
    docs = kept(b)
    assert dict(zip(kt.column("id").to_pylist(), kt.column(CLUSTER_SIZE).to_pylist())) == {
        i: r[CLUSTER_SIZE] for i, r in docs.items()}
    # buckets: each file holds only band keys of its partition
    for f in eio.listdir_files(str(b / "index/minhash_dedup/buckets"), ".parquet"):
        q = int(f.rsplit("part-", 1)[1].split(".")[0])
        keys = eio.read_parquet(f, ["band_key"]).column("band_key").to_numpy()
        assert set((keys % 5).tolist()) == {q}


def test_cluster_sizes_across_the_chain_equal_the_single_run(runs):
    """A's documents that won copies in B: their size in A plus their wins in B is their size in
    the single run; B's documents keep the size the single run gives them."""
    a, b, ab = runs["exact"]
    sizes = {(o, i): n for o, i, n in zip(*(cluster_sizes([str(a), str(b)]).column(c).to_pylist()
                                            for c in ("output", "id", CLUSTER_SIZE)))}
    single = {i: r[CLUSTER_SIZE] for i, r in kept(ab).items()}
    a_id, b_id = output_identity(str(a)), output_identity(str(b))
    won = [i for (o, i), n in sizes.items() if o == a_id and n > kept(a)[i][CLUSTER_SIZE]]
    assert len(won) >= 5                                   # the exact and near copies B lost to A
    for (o, i), n in sizes.items():
        assert n == single[i], (o, i, n, single[i])
    assert {i for o, i in sizes if o == b_id} == {i for i in single if i.startswith("b")}


def test_chain_c_against_a_and_b(snap, runs, tmp_path):
    """C against A and B (other partition counts than both) keeps what a single run over A+B+C
    keeps from C; C against B alone still finds A's documents that B's index rows name."""
    s, paths = snap
    a, b, _ = runs["exact"]
    c = tmp_path / "C"
    run(job(EXACT_MINHASH, 7, against=[a, b]), paths["c"], c)
    abc = tmp_path / "ABC"
    run(job(EXACT_MINHASH, 7), paths["a"] + paths["b"] + paths["c"], abc)
    assert_b_as_in_single_run(c, abc, "c", s.docs["c"])
    rej = rejects(c)
    a_id, b_id = output_identity(str(a)), output_identity(str(b))
    assert rej["c-exactA"]["kept_in"] == a_id and rej["c-exactB"]["kept_in"] == b_id
    assert rej["c-exactA"]["reason"] == "exact_duplicate_of_previous"
    # the near copy of a document B removed as a copy of A's is matched with A's kept document
    assert rejects(b)["b-nearA12"]["kept_in"] == a_id
    assert rej["c-nearBremoved"]["kept_in"] == a_id
    assert rej["c-nearBremoved"]["kept_id"] in kept(a)
    # an exact copy of it names the document exact_dedup kept in B, which minhash_dedup then removed
    assert (rej["c-exactBremoved"]["reason"], rej["c-exactBremoved"]["kept_id"], rej["c-exactBremoved"]["kept_in"]) == (
        "exact_duplicate_of_previous", "b-nearA12", b_id)
    # cluster sizes over the chain (that copy counted for A's document) equal the single run's
    sizes = cluster_sizes([str(a), str(b), str(c)])
    single = {i: r[CLUSTER_SIZE] for i, r in kept(abc).items()}
    assert dict(zip(sizes.column("id").to_pylist(), sizes.column(CLUSTER_SIZE).to_pylist())) == single
    only_b = tmp_path / "C-against-B"
    run(job(EXACT_MINHASH, 7, against=[b]), paths["c"], only_b)
    rej_b = rejects(only_b)
    assert rej_b["c-nearBremoved"]["kept_in"] == a_id      # through B's index row for b-nearA12
    assert "c-exactA" in kept(only_b)                        # B never saw a022: not compared
    assert rej_b["c-exactB"]["kept_in"] == b_id
    assert eio.read_json(str(c / "index/minhash_dedup/meta.json"))["refers_to"] == [a_id, b_id]


# ------------------------------------------------------------------------------------ refusals

def test_refuses_other_parameters_or_a_missing_index_before_anything_runs(snap, runs, tmp_path):
    _, paths = snap
    a, _, _ = runs["exact"]
    with pytest.raises(JobError, match=r"dedup.against\[0\]: minhash_dedup: .*other parameters.*num_perm: 112 there, 128 here"):
        plan_job(job([{"minhash_dedup": {"num_perm": 128}}], against=[a]), paths["b"], str(tmp_path / "x"))
    with pytest.raises(JobError, match=r"minhash_dedup: .*no signatures"):
        plan_job(job([{"minhash_dedup": {"verify": True}}], against=[a]), paths["b"], str(tmp_path / "x"))
    with pytest.raises(JobError, match=r"dedup.against\[0\]: line_dedup: .* has no index/line_dedup/"):
        plan_job(job([{"line_dedup": {}}], against=[a]), paths["b"], str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------------------------ guarantees

def test_redone_reduce_starts_its_index_over(snap, runs, tmp_path):
    """A reduce killed after writing part of the index is redone whole on resume: the stale parts
    go, and output and index are those of an uninterrupted run."""
    _, paths = snap
    a, b, _ = runs["exact"]
    out = tmp_path / "B"
    spec = job(EXACT_MINHASH, 5, against=[a])
    run(spec, paths["b"], out, keep_work=True)
    plan, graph = plan_job(spec, paths["b"], str(out))
    stage = next(s.index for s in graph.stages if any(o.name == "minhash_dedup" for o in s.map_ops))
    manifest = eio.Manifest(plan.work.manifest)
    for unit in [plan.work.reduce_unit(stage, "minhash_dedup")] + manifest.units(f"stage-{stage + 1}/"):
        os.remove(manifest.path(unit))
    os.remove(out / "index/minhash_dedup/meta.json")
    stale = out / "index/minhash_dedup/buckets/part-09999.parquet"
    eio.write_parquet_atomic(pa.table({"band_key": pa.array([1], pa.uint64())}), str(stale))
    run(spec, paths["b"], out)
    assert not stale.exists()
    for sub in ("index/minhash_dedup", "index/exact_dedup"):
        got = sorted(p.relative_to(out) for p in (out / sub).rglob("*.parquet"))
        assert got == sorted(p.relative_to(b) for p in (b / sub).rglob("*.parquet"))
        assert all(eio.read_parquet(str(out / k)).equals(eio.read_parquet(str(b / k))) for k in got)
    assert (out / "index/minhash_dedup/meta.json").exists()
    assert kept(out) == kept(b) and rejects(out) == rejects(b)


def test_exact_dedup_first_leaves_minhash_output_unchanged(snap, runs, tmp_path):
    """With exact_dedup before minhash_dedup the same documents are kept with the same cluster
    sizes (exact copies are counted through `_exact_copies`); only the rejecting step changes."""
    _, paths = snap
    a, b, _ = runs["exact"]
    out = tmp_path / "B-minhash-only"
    run(job([{"minhash_dedup": {}}], 5, against=[a]), paths["b"], out)
    assert kept(out) == kept(b)
    assert set(rejects(out)) == set(rejects(b))


@pytest.mark.slow
@pytest.mark.ray
def test_same_output_with_one_worker_and_on_ray(snap, runs, tmp_path):
    pytest.importorskip("ray")
    _, paths = snap
    a, b, _ = runs["exact"]
    spec = job(EXACT_MINHASH, 5, against=[a])
    for name, kw in (("one", {"workers": 1}), ("ray", {"executor": "ray", "workers": 2})):
        out = tmp_path / name
        run(spec, paths["b"], out, **kw)
        assert kept(out) == kept(b) and rejects(out) == rejects(b)
        assert eio.read_parquet(str(out / "duplicates.parquet")).equals(eio.read_parquet(str(b / "duplicates.parquet")))
        for p in (b / "index").rglob("*.parquet"):
            assert eio.read_parquet(str(out / p.relative_to(b))).equals(eio.read_parquet(str(p))), p


def test_decant_dedup_against(snap, runs, tmp_path):
    """`decant dedup --against` (MinHash alone, as the command runs it) and its one-line refusal."""
    from typer.testing import CliRunner

    from jobs.cli import app
    _, paths = snap
    a, _, _ = runs["exact"]
    out = tmp_path / "dedup"
    inputs = [x for p in paths["b"] for x in ("-i", p)]
    res = CliRunner().invoke(app, ["dedup", *inputs, "-o", str(out), "--against", str(a), "-q"])
    assert res.exit_code == 0, res.output
    reasons = {r["reason"] for r in rejects(out).values()}
    assert "near_duplicate_of_previous" in reasons
    assert all(r["kept_in"] == output_identity(str(a)) for r in rejects(out).values()
               if r["reason"] == "near_duplicate_of_previous")
    bad = CliRunner().invoke(app, ["dedup", *inputs, "-o", str(tmp_path / "bad"), "--against", str(a),
                                   "--num-perm", "128", "-q"])
    assert bad.exit_code == 2 and "other parameters" in bad.output
