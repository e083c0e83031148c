"""Training the perplexity models (SentencePiece + KenLM, as CCNet) and computing their cut-offs.

    train(lang, corpus, out)     -> out/<lang>.sp.model, out/<lang>.arpa.bin
    cutoffs(inputs, models, out) -> out (JSON {lang: {"30": x, "60": y, ...}, "_meta": {...}})

Training normalises every line exactly as scoring does (operators.perplexity.normalize), trains a
unigram SentencePiece model on the normalised lines, tokenises them, estimates a pruned modified
Kneser-Ney n-gram model with KenLM's `lmplz` and converts it with `build_binary` into a quantised
trie. `lmplz` and `build_binary` are not in the kenlm wheel: scripts/build_kenlm.sh builds them;
they are found on PATH or in $DECANT_KENLM_BIN.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from operators.paths import REPO_ROOT
from operators.perplexity import (
    STORED_PERCENTILES,
    discover,
    get_model,
    normalize,
    percentiles_from_counts,
    resolve_models_dir,
)

BUILD_SCRIPT = "scripts/build_kenlm.sh"
#: Languages written without spaces between words: SentencePiece keeps rarer characters.
NO_SPACE_LANGS = {"zh", "ja", "ko", "th", "my", "km", "lo", "bo", "yue", "wuu"}


class KenLMNotFound(RuntimeError):
    pass


def find_kenlm_binary(name: str) -> str:
    """Path of KenLM's `lmplz` or `build_binary`: $DECANT_KENLM_BIN first, then PATH."""
    env = os.environ.get("DECANT_KENLM_BIN")
    if env:
        cand = Path(env) / name
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    found = shutil.which(name)
    if found:
        return found
    where = f"$DECANT_KENLM_BIN ({env}) or PATH" if env else "PATH (or $DECANT_KENLM_BIN)"
    raise KenLMNotFound(
        f"KenLM's `{name}` was not found on {where}. It is not part of the kenlm Python wheel: "
        f"build it with `bash {BUILD_SCRIPT}` (installs lmplz and build_binary into /usr/local/bin, "
        f"or into $DECANT_KENLM_BIN / the folder given as its argument).")


# ---------------------------------------------------------------------------------------------
# Reading corpora
# ---------------------------------------------------------------------------------------------

def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _is_jsonl(path: Path, strict: bool = False) -> bool:
    """JSON lines by name; `.json` too when named explicitly (not when searching a folder)."""
    name = path.name.removesuffix(".gz")
    return name.endswith((".jsonl", ".ndjson") if strict else (".jsonl", ".json", ".ndjson"))


def _hidden_or_rejects(rel: Path) -> bool:
    return any(s == "rejects" or s.startswith((".", "_")) for s in rel.parts)


def _record_text(rec: dict, field: str) -> str | None:
    text = rec.get(field)
    if text is None and field == "text":
        text = rec.get("raw_content")  # CCNet's own field name
    return text if isinstance(text, str) else None


def _record_language(rec: dict) -> str | None:
    lang = rec.get("language")
    if lang is None and isinstance(rec.get("metadata"), dict):
        lang = rec["metadata"].get("language")
    return lang


def iter_documents(paths: Iterable[str | Path], text_field: str = "text",
                   lang: str | None = None, lines_per_doc: int = 0) -> Iterator[tuple[str, str | None]]:
    """(text, language) of every document in JSONL(.gz), Parquet, text files or decant output folders.

    A plain text file has no language: `lang` gives it. Its documents are its lines, or groups of
    `lines_per_doc` consecutive non-empty lines when that is > 1. A folder is searched recursively
    for *.parquet and *.jsonl(.gz) files; a hive partition `language=xx` in the path names the
    language when the rows do not.
    """
    for p in paths:
        path = Path(p)
        if path.is_dir():
            if (path / "documents").is_dir():  # a decant output folder: its kept documents only
                path = path / "documents"
            files = sorted(f for f in path.rglob("*")
                           if f.is_file() and (f.suffix == ".parquet" or _is_jsonl(f, strict=True))
                           and not _hidden_or_rejects(f.relative_to(path)))
            yield from iter_documents(files, text_field, lang, lines_per_doc)
            continue
        part_lang = next((s.split("=", 1)[1] for s in path.parts if s.startswith("language=")), None)
        default_lang = lang or part_lang
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(path)
            cols = [c for c in (text_field, "language") if c in pf.schema_arrow.names]
            for rb in pf.iter_batches(columns=cols, batch_size=1024):
                t = rb.column(text_field).to_pylist()
                lg = rb.column("language").to_pylist() if "language" in cols else [None] * len(t)
                for text, lgx in zip(t, lg):
                    if text:
                        yield text, lang or lgx or default_lang
        elif _is_jsonl(path):
            with _open_text(path) as f:
                for line in f:
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except ValueError:  # a bad line (cut, garbled) is skipped, as the readers do
                        continue
                    if not isinstance(rec, dict):
                        continue
                    text = _record_text(rec, text_field)
                    if text:
                        yield text, lang or _record_language(rec) or default_lang
        else:
            with _open_text(path) as f:
                if lines_per_doc > 1:
                    group: list[str] = []
                    for line in f:
                        line = line.rstrip("\n")
                        if line.strip():
                            group.append(line)
                        if len(group) == lines_per_doc:
                            yield "\n".join(group), default_lang
                            group = []
                    if group:
                        yield "\n".join(group), default_lang
                else:
                    for line in f:
                        line = line.rstrip("\n")
                        if line.strip():
                            yield line, default_lang


# WikiText is tokenised: "the 1 @,@ 000 km @-@ long road ( see \" Foo \" ) ." -> plain text.
_WT_JOIN = [(" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", ".")]
_NO_SPACE_BEFORE = {".", ",", ";", ":", "!", "?", ")", "]", "}", "%", "'s", "'re", "'ve", "'d", "'ll",
                    "'m", "n't", "'", "'S", "N'T"}
_NO_SPACE_AFTER = {"(", "[", "{", "$", "#"}
_SENT_SPLIT = re.compile(r"(?<= [.!?]) (?=[A-Z\"'(])")


def join_wikitext_numbers(text: str) -> str:
    """WikiText's split numbers and compounds joined: "1 @,@ 000" -> "1,000", "km @-@ long" -> "km-long"."""
    for a, b in _WT_JOIN:
        text = text.replace(a, b)
    return text


def detokenize_wikitext(sentence: str) -> str:
    sentence = join_wikitext_numbers(sentence)
    out: list[str] = []
    glue_next, quote_open = True, False
    for tok in sentence.split():
        if tok == '"':
            if quote_open:
                out.append('"')
            else:
                out.append(('' if glue_next else ' ') + '"')
                glue_next = True
            quote_open = not quote_open
            continue
        if glue_next or tok in _NO_SPACE_BEFORE:
            out.append(tok)
        else:
            out.append(" " + tok)
        glue_next = tok in _NO_SPACE_AFTER
    return "".join(out).strip()


def wikitext_sentences(lines: Iterable[str], max_unk_ratio: float = 0.1) -> Iterator[str]:
    """WikiText lines -> plain sentences: headings dropped, paragraphs split into sentences,
    tokenisation undone. `<unk>` (a rare word WikiText replaced, mostly names) is removed; a
    sentence where more than `max_unk_ratio` of the words were `<unk>` is dropped."""
    for line in lines:
        line = line.strip()
        if not line or (line.startswith("=") and line.endswith("=")):
            continue
        for sent in _SENT_SPLIT.split(line):
            words = sent.split()
            n_unk = words.count("<unk>")
            if n_unk:
                if n_unk > max_unk_ratio * len(words):
                    continue
                sent = " ".join(w for w in words if w != "<unk>")
            text = detokenize_wikitext(sent)
            if len(text.split()) >= 3:
                yield text


def corpus_lines(corpus: Sequence[str | Path], wikitext: bool = False,
                 text_field: str = "text") -> Iterator[str]:
    """Raw training lines of a corpus (documents split on newlines)."""
    if wikitext:
        for p in corpus:
            with _open_text(Path(p)) as f:
                yield from wikitext_sentences(f)
        return
    for text, _ in iter_documents(corpus, text_field=text_field):
        for line in text.split("\n"):
            if line.strip():
                yield line


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------

def _run(cmd: list[str], stdin=None, stdout=None, what: str = "") -> None:
    proc = subprocess.run(cmd, stdin=stdin, stdout=stdout if stdout is not None else subprocess.PIPE,
                          stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace")[-3000:]
        raise RuntimeError(f"{what or cmd[0]} failed (exit {proc.returncode}): {' '.join(cmd)}\n{err}")


def train(lang: str, corpus: Sequence[str | Path], out: str | Path, vocab_size: int = 16000,
          order: int = 5, prune: Sequence[int] = (0, 1, 1, 1, 2), memory: str = "20%",
          discount_fallback: bool = True, quantize: int | None = 8, wikitext: bool = False,
          character_coverage: float | None = None, max_lines: int = 5_000_000,
          text_field: str = "text", keep_arpa: bool = False, seed: int = 0,
          tmp_dir: str | None = None) -> dict[str, Any]:
    """Train `<lang>.sp.model` and `<lang>.arpa.bin` in `out` from the corpus files.

    vocab_size is an upper bound (SentencePiece lowers it on small corpora). prune: lmplz
    --prune thresholds per order (0 1 1 1 2 drops n-grams of order >= 2 seen once, >= 5 seen
    twice or less), memory: lmplz -S. quantize: build_binary -q/-b bits (None: no quantisation).
    """
    import sentencepiece as spm

    if not re.fullmatch(r"[A-Za-z0-9_-]+", lang):
        raise ValueError(f"language code {lang!r} must be letters, digits, '_' or '-' (no dots)")
    lmplz = find_kenlm_binary("lmplz")
    build_binary = find_kenlm_binary("build_binary")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    prune = [int(x) for x in prune][:order]
    if prune and prune[0] != 0:
        raise ValueError("prune: unigrams cannot be pruned (the first value must be 0)")
    with tempfile.TemporaryDirectory(prefix=f"decant-lm-{lang}-", dir=tmp_dir) as tmp:
        tmpd = Path(tmp)
        norm_path = tmpd / "normalized.txt"
        n_lines = n_chars = 0
        with open(norm_path, "w", encoding="utf-8") as f:
            for line in corpus_lines(corpus, wikitext=wikitext, text_field=text_field):
                norm = normalize(line)
                if not norm:
                    continue
                f.write(norm + "\n")
                n_lines += 1
                n_chars += len(norm)
                if n_lines >= max_lines:
                    break
        if n_lines == 0:
            raise ValueError(f"corpus {list(map(str, corpus))} has no text")

        # SentencePiece (unigram, as CCNet) on the normalised lines.
        if character_coverage is None:
            character_coverage = 0.9995 if lang in NO_SPACE_LANGS else 1.0
        spm.set_random_generator_seed(seed)
        prefix = tmpd / f"{lang}.sp"
        sp_vocab = vocab_size
        for _attempt in range(2):
            try:
                # Lines from an iterator and the model into memory: the file records no temporary
                # path, so the same corpus gives the same bytes.
                model = io.BytesIO()
                with open(norm_path, encoding="utf-8") as fin:
                    spm.SentencePieceTrainer.train(
                        sentence_iterator=(ln.rstrip("\n") for ln in fin), model_writer=model,
                        vocab_size=sp_vocab, model_type="unigram", character_coverage=character_coverage,
                        hard_vocab_limit=False, input_sentence_size=max_lines,
                        shuffle_input_sentence=True, num_threads=2, minloglevel=2)
                Path(str(prefix) + ".model").write_bytes(model.getvalue())
                break
            except RuntimeError as e:
                # Scripts with many characters (zh, ja) need more pieces than characters kept.
                m = re.search(r"(\d+) vs (\d+)", str(e))
                if _attempt or "required_chars" not in str(e) or not m:
                    raise
                sp_vocab = int(int(m.group(2)) * 1.25)
        sp = spm.SentencePieceProcessor(model_file=str(prefix) + ".model")

        # Tokenise with the same normalisation + pieces as scoring.
        tok_path = tmpd / "tokenized.txt"
        n_tokens = 0
        with open(norm_path, encoding="utf-8") as fin, open(tok_path, "w", encoding="utf-8") as fout:
            chunk: list[str] = []
            for line in fin:
                chunk.append(line.rstrip("\n"))
                if len(chunk) == 10_000:
                    n_tokens += _write_pieces(sp, chunk, fout)
                    chunk = []
            if chunk:
                n_tokens += _write_pieces(sp, chunk, fout)

        # KenLM: estimate, then binarise.
        arpa = tmpd / f"{lang}.arpa"
        cmd = [lmplz, "-o", str(order), "-S", memory, "-T", str(tmpd), "--skip_symbols"]
        if prune and any(prune):
            cmd += ["--prune", *map(str, prune)]
        if discount_fallback:
            cmd.append("--discount_fallback")
        with open(tok_path, "rb") as fin, open(arpa, "wb") as fout:
            _run(cmd, stdin=fin, stdout=fout, what="lmplz")
        binary_tmp = tmpd / f"{lang}.arpa.bin"
        cmd = [build_binary, "-T", str(tmpd / "trie"), "-S", memory]
        if quantize:
            cmd += ["-q", str(quantize), "-b", str(quantize)]
        cmd += ["trie", str(arpa), str(binary_tmp)]
        _run(cmd, what="build_binary")

        sp_out, lm_out = out / f"{lang}.sp.model", out / f"{lang}.arpa.bin"
        shutil.copyfile(str(prefix) + ".model", sp_out)
        shutil.copyfile(binary_tmp, lm_out)
        ngrams = _arpa_counts(arpa)
        if keep_arpa:
            shutil.copyfile(arpa, out / f"{lang}.arpa")
    return {
        "lang": lang, "sp_model": str(sp_out), "lm": str(lm_out),
        "lines": n_lines, "chars": n_chars, "tokens": n_tokens, "vocab_size": sp.get_piece_size(),
        "order": order, "prune": prune, "ngrams": ngrams,
        "sp_bytes": sp_out.stat().st_size, "lm_bytes": lm_out.stat().st_size,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _write_pieces(sp, lines: list[str], fout) -> int:
    n = 0
    for pieces in sp.encode(lines, out_type=str, num_threads=2):
        fout.write(" ".join(pieces) + "\n")
        n += len(pieces)
    return n


def _arpa_counts(arpa: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    with open(arpa, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("ngram "):
                k, v = line[6:].strip().split("=")
                counts[k] = int(v)
            elif line.startswith("\\1-grams"):
                break
    return counts


# ---------------------------------------------------------------------------------------------
# Cut-offs
# ---------------------------------------------------------------------------------------------



def score_documents(inputs: Sequence[str | Path], models: str | Path = "bundled", sample: int = 10_000,
                    lang: str | None = None, lines_per_doc: int = 0, tokenizer: str = "auto",
                    line_mode: str = "split", seed: int = 0) -> dict[str, list[float]]:
    """Perplexities of up to `sample` documents per language (reservoir sample, deterministic)."""
    models_dir = resolve_models_dir(models)
    available = discover(models_dir)
    if not available:
        raise FileNotFoundError(f"no language models in {models_dir}")
    rng = random.Random(seed)
    reservoirs: dict[str, list[str]] = {}
    seen: dict[str, int] = {}
    for text, lg in iter_documents(inputs, lang=lang, lines_per_doc=lines_per_doc):
        if lg not in available:
            continue
        k = seen[lg] = seen.get(lg, 0) + 1
        res = reservoirs.setdefault(lg, [])
        if len(res) < sample:
            res.append(text)
        else:
            j = rng.randrange(k)
            if j < sample:
                res[j] = text
    scores: dict[str, list[float]] = {}
    for lg, docs in reservoirs.items():
        entry = available[lg]
        tok = tokenizer if tokenizer != "auto" else ("sentencepiece" if entry["sp"] else "whitespace")
        model = get_model(entry["lm"], entry["sp"], tok)
        vals = [model.perplexity(t, line_mode) for t in docs]
        scores[lg] = [v for v in vals if v is not None]
    return scores


def cutoffs(inputs: Sequence[str | Path], models: str | Path = "bundled", out: str | Path | None = None,
            percentiles: Sequence[int] = (30, 60), sample: int = 10_000, lang: str | None = None,
            lines_per_doc: int = 0, merge: bool = True, tokenizer: str = "auto",
            line_mode: str = "split", min_docs: int = 10, source: str | None = None) -> dict[str, Any]:
    """Score a sample of documents per language and write the percentile file the operator reads.

    out defaults to `<models>/cutoffs.json`. With `merge`, languages already in `out` and not
    scored now are kept. Languages with fewer than `min_docs` scored documents are left out.
    `source` describes the inputs in the file's metadata (default: their paths).
    """
    import numpy as np

    models_dir = resolve_models_dir(models)
    out = Path(out) if out else models_dir / "cutoffs.json"
    scores = score_documents(inputs, models_dir, sample=sample, lang=lang, lines_per_doc=lines_per_doc,
                             tokenizer=tokenizer, line_mode=line_mode)
    pcts = sorted({int(p) for p in percentiles} | set(STORED_PERCENTILES))
    data: dict[str, Any] = {}
    if merge and out.is_file():
        data = json.loads(out.read_text())
    meta = data.setdefault("_meta", {})
    meta["format"] = "{lang: {percentile: perplexity}}; bucket head < p30 <= middle < p60 <= tail"
    meta.setdefault("languages", {})
    inputs_desc = [source] if source else [_describe_input(p) for p in inputs]
    for lg, vals in sorted(scores.items()):
        if len(vals) < min_docs:
            continue
        arr = np.asarray(vals, dtype=float)
        values, counts = np.unique(arr, return_counts=True)
        data[lg] = {str(p): round(v, 1) for p, v in percentiles_from_counts(values, counts, pcts).items()}
        meta["languages"][lg] = {"documents": len(vals), "inputs": inputs_desc,
                                 "lines_per_doc": lines_per_doc or None, "line_mode": line_mode,
                                 "median": round(float(np.median(arr)), 1)}
    out.parent.mkdir(parents=True, exist_ok=True)
    ordered = {"_meta": data.pop("_meta"), **dict(sorted(data.items()))}
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(ordered, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(out)
    return {"path": str(out), "documents": {k: len(v) for k, v in scores.items()},
            "cutoffs": {k: {str(p): data[k][str(p)] for p in percentiles} for k in scores if k in data}}


def _describe_input(p: str | Path) -> str:
    """Input path for the record: relative to the repo or the shared data when under them."""
    path = Path(p).resolve()
    for base in (REPO_ROOT, REPO_ROOT.parent / "shared"):
        try:
            return str(path.relative_to(base.resolve()))
        except ValueError:
            continue
    return str(p)
