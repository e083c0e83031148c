"""The recipe of the bundled perplexity models: which real text trains each language, which is held out.

Sources (the shared data folder, `text/`): `lingua/<l>.txt` (1,000 Leipzig web/news sentences for each
of 75 languages), `ud/<l>.txt` (sentences of Universal Dependencies treebanks, 27 languages) and, for
English, WikiText-2 (test + valid). Per language:

    lingua: non-empty lines; the first 75% train, the last 25% are held out (as the earlier models)
    ud:     lines; the first 90% train, the last 10% are held out
    en:     WikiText-2 sentences train as well (none held out: lingua's and ud's slices are)

The held-out lines, four to a document, give the bundled cut-offs and the held-out perplexity that
models/README.md reports. Lines of treebanks stored tokenised ("word , word .") are joined back
("word, word.") so that the models see text as it is written. Lingua's Norwegian (Bokmål, `nb`) is
trained as `no`, the code lid.176 gives Norwegian.

`build(data, out)` trains every language and writes the cut-offs; `scripts/build_models.sh` runs it
(through `decant lm bundle`) and re-takes the English cut-offs on real web pages.
"""
from __future__ import annotations

import dataclasses
import json
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from operators.lm_train import corpus_lines, cutoffs, train

LINGUA_HELD_OUT = 0.25
UD_HELD_OUT = 0.10
LINES_PER_DOC = 4
#: What `build` writes beside the models: per language, its training lines by source, options, sizes.
TRAINING_RECORD = "training.json"
#: lingua file name -> model code, where lid.176 names the language differently.
MODEL_CODE = {"nb": "no"}
#: Scripts with thousands of characters: SentencePiece needs more pieces than other scripts.
LARGE_SCRIPT = {"zh", "ja", "ko"}

_TOKENIZED = re.compile(r" [,.] | [.]$")
_SPACE_BEFORE = re.compile(r" +([,.;:!?%)\]}»])(?=\s|$)")
_SPACE_AFTER = re.compile(r"([(\[{«]) +")


def detokenize(line: str) -> str:
    """A line stored tokenised (a space before every comma and full stop) joined back; others unchanged."""
    if not _TOKENIZED.search(line):
        return line
    return _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", line))


def lingua_code(model_code: str) -> str:
    back = {v: k for k, v in MODEL_CODE.items()}
    return back.get(model_code, model_code)


@dataclasses.dataclass
class LanguageText:
    """One language's real text, split into training lines and held-out lines per source."""

    lang: str                        # the model's code (lid.176's)
    train: list[str]
    held_out: dict[str, list[str]]   # source -> held-out lines
    train_counts: dict[str, int]     # source -> training lines (wikitext: sentences)

    def held_out_documents(self, source: str | None = None) -> list[str]:
        """Held-out lines, `LINES_PER_DOC` to a document (one source, or all of them in order)."""
        docs = []
        for name, lines in self.held_out.items():
            if source is None or name == source:
                docs += ["\n".join(lines[i:i + LINES_PER_DOC]) for i in range(0, len(lines), LINES_PER_DOC)]
        return docs


def _lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text(encoding="utf-8").split("\n") if ln.strip()]


def languages(data: Path) -> list[str]:
    """Model codes of every language with text (every lingua file)."""
    return sorted(MODEL_CODE.get(p.stem, p.stem) for p in (data / "text" / "lingua").glob("*.txt"))


def language_text(data: Path, lang: str) -> LanguageText:
    """The training and held-out lines of one language (model code)."""
    text = data / "text"
    src = lingua_code(lang)
    train_lines: list[str] = []
    held: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    lingua = _lines(text / "lingua" / f"{src}.txt")
    k = len(lingua) - int(len(lingua) * LINGUA_HELD_OUT)
    train_lines += lingua[:k]
    held["lingua"] = lingua[k:]
    counts["lingua"] = k
    ud_path = text / "ud" / f"{src}.txt"
    if ud_path.is_file():
        ud = [detokenize(ln) for ln in _lines(ud_path)]
        k = len(ud) - int(len(ud) * UD_HELD_OUT)
        train_lines += ud[:k]
        held["ud"] = ud[k:]
        counts["ud"] = k
    if lang == "en":
        wiki = list(corpus_lines([text / "wikitext-2" / "test.txt", text / "wikitext-2" / "valid.txt"],
                                 wikitext=True))
        train_lines += wiki
        counts["wikitext"] = len(wiki)
    return LanguageText(lang, train_lines, held, counts)


def training_options(corpus: LanguageText) -> dict[str, Any]:
    """Vocabulary and pruning by the amount of text. Only singletons of the higher orders go: on
    ~750 sentences, pruning 4- and 5-gram singletons halves the model and leaves held-out bits per
    character unchanged (af: 2.615 -> 2.616); on more text trigram singletons go as well."""
    n = len(corpus.train)
    large_script = corpus.lang in LARGE_SCRIPT
    if n <= 1_500:
        vocab, prune = (4000 if large_script else 2000), [0, 0, 0, 1, 1]
    elif n <= 8_000:
        vocab, prune = (6000 if large_script else 4000), [0, 0, 1, 1, 1]
    else:
        vocab, prune = 8000, [0, 0, 1, 1, 1]
    return {"vocab_size": vocab, "order": 5, "prune": prune}


def build(data: Path, out: Path, langs: list[str] | None = None, memory: str = "1G",
          log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Train every language's model into `out`, write `out/cutoffs.json` from the held-out documents and
    `out/training.json` (per language: training lines by source, options, n-grams, file sizes).

    Returns the same record with the seconds each language took."""
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}
    t_all = time.perf_counter()
    for lang in langs or languages(data):
        corpus = language_text(data, lang)
        opts = training_options(corpus)
        with tempfile.TemporaryDirectory(prefix=f"decant-bundle-{lang}-") as tmp:
            train_file = Path(tmp) / "train.txt"
            train_file.write_text("\n".join(corpus.train) + "\n", encoding="utf-8")
            info = train(lang, [train_file], out, memory=memory, **opts)
            held_file = Path(tmp) / "held.jsonl"
            with open(held_file, "w", encoding="utf-8") as f:
                for doc in corpus.held_out_documents():
                    f.write(json.dumps({"text": doc, "language": lang}, ensure_ascii=False) + "\n")
            described = ", ".join(f"text/{s}/{lingua_code(lang)}.txt last {len(v)} lines"
                                  for s, v in corpus.held_out.items())
            cutoffs([held_file], out, out / "cutoffs.json", source=f"held out: {described}, "
                    f"{LINES_PER_DOC} per document", lines_per_doc=LINES_PER_DOC)
        report[lang] = {"train_lines": corpus.train_counts, "options": opts, "ngrams": info["ngrams"],
                        "sp_bytes": info["sp_bytes"], "lm_bytes": info["lm_bytes"], "seconds": info["seconds"]}
        log(f"{lang}: {sum(corpus.train_counts.values())} lines, {info['lm_bytes'] + info['sp_bytes']} bytes, "
            f"{info['seconds']} s")
    record = {lang: {k: v for k, v in r.items() if k != "seconds"} for lang, r in report.items()}
    (out / TRAINING_RECORD).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    report["_seconds"] = round(time.perf_counter() - t_all, 1)
    return report
