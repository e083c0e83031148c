#!/usr/bin/env bash
# Rebuild the bundled model-based signal models in models/signals/ from the real text in shared/data
# (benchmarks/corpora/signal_corpus.py says which text and what is held out; models/README.md has licences):
#   wikipedia.ftz + .json   fastText classifier, curated prose vs crawl (the `classifier` operator's default)
#   curated.npz + .json     hashed uni/bigram importance model, same sides (the `importance` operator's default)
#
#   bash scripts/build_signal_models.sh [OUT_DIR]      default: models/signals of this repo
#
# One thread and fixed seeds: the same versions rebuild byte-identical models. About 70 CPU-seconds.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
export DECANT_SHARED_DATA="${DECANT_SHARED_DATA:-$REPO/../shared/data}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
OUT="${1:-$REPO/models/signals}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
PY="${PYTHON:-python}"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/decant-signals.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

cd "$REPO"
$PY -m benchmarks.corpora.signal_corpus "$TMP" >/dev/null        # positive.jsonl.gz, negative.jsonl.gz
cd "$TMP"                                                # relative input names in the models' JSON
NOTE="benchmarks/corpora/signal_corpus.py over shared/data (see models/README.md)"
$PY -m jobs.cli classifier train --positive positive.jsonl.gz --negative negative.jsonl.gz \
    --shuffled-negatives 0.33 --language en -o "$OUT/wikipedia.ftz" --note "$NOTE" >/dev/null
$PY -m jobs.cli importance train --target positive.jsonl.gz --source negative.jsonl.gz \
    --buckets 262144 --language en -o "$OUT/curated.npz" --note "$NOTE" >/dev/null
du -sh "$OUT"
