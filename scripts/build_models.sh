#!/usr/bin/env bash
# Rebuild the bundled perplexity models in models/ (SentencePiece + KenLM per language) and their
# cut-offs, from the real text in shared/data/text (see models/README.md for data and licences).
#
#   bash scripts/build_models.sh [OUT_DIR]          default: models/ of this repo
#
# Needs lmplz and build_binary (bash scripts/build_kenlm.sh). Deterministic up to KenLM/SentencePiece
# versions; takes about a minute on 2 cores.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${DECANT_SHARED_DATA:-$REPO/../shared/data}"
OUT="${1:-$REPO/models}"
PY="${PYTHON:-python}"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/decant-models.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
cd "$REPO"
mkdir -p "$OUT"
rm -f "$OUT"/*.arpa.bin "$OUT"/*.sp.model "$OUT/cutoffs.json"

# Lingua (Leipzig corpora) sentence files: first 75% train, last 25% held out for the cut-offs.
LINGUA_LANGS="de fr es it pt nl pl ru uk cs sv da fi hu ro tr el ar fa he hi zh ja ko vi id th"

# English: WikiText-2 test+valid (Wikipedia, as CCNet's models), pruned 5-gram.
$PY -m jobs.lm train --lang en --wikitext --vocab-size 8000 --order 5 --prune "0 1 1 1 2" \
    --corpus "$DATA/text/wikitext-2/test.txt" --corpus "$DATA/text/wikitext-2/valid.txt" -o "$OUT" >/dev/null
# English cut-offs on held-out web/news text: all 1,000 Lingua English sentences, 4 per document.
$PY -m jobs.lm cutoffs -m "$OUT" --lang en --lines-per-doc 4 -i "$DATA/text/lingua/en.txt" \
    --source "shared/data/text/lingua/en.txt (all lines, 4 per document)" >/dev/null

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
$PY -m jobs.cli run -i "$TMP/aeb.jsonl" -o "$TMP/aeb-out" --set 'pipeline=[{langid: {}}]' -q >/dev/null
$PY -m jobs.lm cutoffs -m "$OUT" -i "$TMP/aeb-out" \
    --source "shared/data/extraction/scrapinghub-aeb gold article text (web pages), langid by decant" >/dev/null

for lang in $LINGUA_LANGS; do
    src="$DATA/text/lingua/$lang.txt"
    grep . "$src" > "$TMP/$lang.all.txt"          # non-empty lines (no pipe into head: pipefail)
    n=$(wc -l < "$TMP/$lang.all.txt")
    k=$(( n * 3 / 4 ))
    head -n "$k" "$TMP/$lang.all.txt" > "$TMP/$lang.train.txt"
    tail -n +"$(( k + 1 ))" "$TMP/$lang.all.txt" > "$TMP/$lang.heldout.txt"
    # ~750 sentences: a small vocabulary and no pruning (pruning singletons would leave little).
    # Scripts with thousands of characters need more pieces than that.
    case "$lang" in zh|ja|ko) vocab=4000 ;; *) vocab=2000 ;; esac
    $PY -m jobs.lm train --lang "$lang" --vocab-size "$vocab" --order 5 --prune "0" \
        --corpus "$TMP/$lang.train.txt" -o "$OUT" >/dev/null
    $PY -m jobs.lm cutoffs -m "$OUT" --lang "$lang" --lines-per-doc 4 -i "$TMP/$lang.heldout.txt" \
        --source "shared/data/text/lingua/$lang.txt non-empty lines $(( k + 1 ))-$n (held out), 4 per document" >/dev/null
done
du -sh "$OUT"
