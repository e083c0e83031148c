"""Duplicate cluster sizes: what a kept document stands for, within one output and across a chain.

Every document minhash_dedup keeps carries `minhash_cluster_size`: itself plus the documents
removed as its duplicates in this job, by minhash_dedup and, before it, by exact_dedup (which
passes the count of a document's exact copies on in the transient `_exact_copies` column, so the
size is the same with or without an exact_dedup step in front). A document of an earlier output
that wins duplicates in a later job is never rewritten: the later output records the win in its
index (`index/<operator>/wins/`: kept_in, kept_id, removed), and `cluster_sizes` adds it up.
"""
from __future__ import annotations

import pyarrow as pa

from engine.documents import ID
from engine.io import listdir_files, read_parquet
from operators.dedup.index import INDEX, KEPT_ID, KEPT_IN, output_identity

#: Transient column (never written to documents/): exact copies removed for this document.
COPIES = "_exact_copies"
#: The document column a kept document's cluster size is written to (FineWeb-2's name).
CLUSTER_SIZE = "minhash_cluster_size"
#: Column of a wins table: the documents removed in favour of the earlier document.
REMOVED = "removed"
#: The operators whose index has a wins table.
WINS_OPERATORS = ("exact_dedup", "minhash_dedup")


def wins(out: str) -> pa.Table:
    """(kept_in, kept_id, removed): the earlier outputs' documents that won duplicates in `out`."""
    files = [f for op in WINS_OPERATORS for f in listdir_files(f"{out.rstrip('/')}/{INDEX}/{op}/wins", ".parquet")]
    tables = [read_parquet(f, [KEPT_IN, KEPT_ID, REMOVED]) for f in files]
    if not tables:
        return pa.table({KEPT_IN: pa.array([], pa.string()), KEPT_ID: pa.array([], pa.string()),
                         REMOVED: pa.array([], pa.int64())})
    return pa.concat_tables(tables).group_by([KEPT_IN, KEPT_ID]).aggregate([(REMOVED, "sum")]).rename_columns(
        [KEPT_IN, KEPT_ID, REMOVED])


def redirects(outputs: list[str]) -> dict[tuple[str, str], tuple[str, str]]:
    """(output, id) -> (output, id) of the document a dedup step removed it for, from the rejects
    (`kept_id`, `kept_in`) of exact_dedup and minhash_dedup: an exact copy may win over a document
    that minhash_dedup removes afterwards, and its count follows that document to its keeper."""
    from engine.output_tree import read_tree
    out_map: dict[tuple[str, str], tuple[str, str]] = {}
    for out in outputs:
        me = output_identity(out)
        for op in WINS_OPERATORS:
            t = read_tree(f"{out.rstrip('/')}/rejects/operator={op}", [ID, KEPT_ID, KEPT_IN])
            if t.num_rows == 0 or KEPT_ID not in t.schema.names:
                continue
            for i, kid, kin in zip(*(t.column(c).to_pylist() for c in (ID, KEPT_ID, KEPT_IN))):
                if kid is not None:
                    out_map[(me, i)] = (kin or me, kid)
    return out_map


def cluster_sizes(outputs: list[str]) -> pa.Table:
    """(output, id, minhash_cluster_size) of every kept document of a chain of outputs (each run
    against the earlier ones): its size in its own output plus what it won in the later ones."""
    from operators.writers import read_documents
    own: dict[tuple[str, str], int] = {}
    for out in outputs:
        me = output_identity(out)
        d = read_documents(out, [ID, CLUSTER_SIZE])
        own.update(((me, i), n) for i, n in zip(d.column(ID).to_pylist(), d.column(CLUSTER_SIZE).to_pylist()))
    moved = redirects(outputs)
    for out in outputs:
        w = wins(out)
        for kin, kid, n in zip(*(w.column(c).to_pylist() for c in (KEPT_IN, KEPT_ID, REMOVED))):
            target, hops = (kin, kid), 0
            while target not in own and target in moved and hops < 64:  # to the document finally kept
                target, hops = moved[target], hops + 1
            if target in own:
                own[target] += n
    rows = sorted(own.items())
    return pa.table({"output": pa.array([o for (o, _), _ in rows], pa.string()),
                     ID: pa.array([i for (_, i), _ in rows], pa.string()),
                     CLUSTER_SIZE: pa.array([n for _, n in rows], pa.int64())})
