#!/usr/bin/env bash
# Rebuild the bundled perplexity models in models/ (SentencePiece + KenLM per language) and their
# cut-offs, from the real text in shared/data/text (see models/README.md for data and licences).
#
#   bash scripts/build_models.sh [OUT_DIR]          default: models/ of this repo
#
# Needs lmplz and build_binary (bash scripts/build_kenlm.sh). Deterministic up to KenLM/SentencePiece
# versions; takes about 6 CPU-minutes (75 languages).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${DECANT_SHARED_DATA:-$REPO/../shared/data}"
OUT="${1:-$REPO/models}"
PY="${PYTHON:-python}"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/decant-models.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
cd "$REPO"
mkdir -p "$OUT"
rm -f "$OUT"/*.arpa.bin "$OUT"/*.sp.model "$OUT/cutoffs.json" "$OUT/training.json"

# Every language with text (the 75 of lingua): lingua + UD treebank sentences (+ WikiText-2 for en),
# a slice of each held out; the held-out sentences, 4 per document, give the cut-offs
# (operators/lm_bundled.py has the recipe; it writes training.json beside the models).
$PY -m jobs.lm bundle --data "$DATA" -o "$OUT" >/dev/null

# English cut-offs re-taken on real web pages, as CCNet takes its cut-offs from the crawl itself: the
# gold main text of the 181 pages of the scrapinghub article-extraction benchmark, language-identified
# by decant (only languages with >= 10 pages are replaced: English).
$PY - "$DATA/extraction/scrapinghub-aeb/ground-truth.json" "$TMP/aeb.jsonl" <<'PYEOF'
import json, sys
gt = json.load(open(sys.argv[1]))
with open(sys.argv[2], "w") as f:
    for k, v in sorted(gt.items()):
        f.write(json.dumps({"id": k, "text": v["articleBody"], "url": v.get("url")}) + "\n")
PYEOF
printf 'pipeline:\n  - langid: {}\n' > "$TMP/langid.yaml"
$PY -m jobs.cli run "$TMP/langid.yaml" -i "$TMP/aeb.jsonl" -o "$TMP/aeb-out" -q >/dev/null
$PY -m jobs.lm cutoffs -m "$OUT" -i "$TMP/aeb-out" \
    --source "shared/data/extraction/scrapinghub-aeb gold article text (web pages), langid by decant" >/dev/null

du -sh "$OUT"

# Model-based signals (models/signals/: the classifier and importance operators' bundled models).
bash "$REPO/scripts/build_signal_models.sh" "$OUT/signals"
