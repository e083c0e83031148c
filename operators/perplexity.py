"""CCNet's perplexity step: SentencePiece + KenLM per language -> `perplexity`, `bucket`.

Scoring follows CCNet (cc_net/perplexity.py, text_normalizer.py):

    for each line of the document (split on "\\n"):
        norm   = normalize(line)        strip, lowercase, accents removed (NFD, drop Mn),
                                        every digit -> "0", unicode punctuation -> ASCII,
                                        control characters removed
        pieces = sentencepiece(norm)
        logp  += kenlm.score(" ".join(pieces))          log10, with <s> and </s>
        n     += len(pieces) + 1                        (+1 for </s>)
    perplexity = round(10 ** (-logp / n), 1)

`line_mode: ccnet` reproduces what CCNet's mine.py really does instead: it normalises the whole
document before SentencePiece, which deletes the newlines (they are control characters), so the
document is scored as one line with its lines glued together.

Buckets come from per-language cut-offs at two percentiles (CCNet: 30 and 60): perplexity below
the first is "head", below the second "middle", otherwise "tail". Documents whose language has
no model get bucket "none" (or are dropped with reason "no_model" when `drop_missing`). The cut-offs
come from a file (`cutoffs: PATH`, default `<models>/cutoffs.json`) or, with `cutoffs: auto`, from
the job's own documents at a barrier (`operators.perplexity_buckets`, which this step expands into).

Models folder: `<lang>.arpa.bin` + `<lang>.sp.model` (CCNet's published files as they are, and
what `decant lm train` writes); other KenLM files are found as `<lang>.bin`, `<lang>.klm`,
`<lang>.binary` or `<lang>.arpa` and can be used with `tokenizer: whitespace`.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import unicodedata
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from engine import io as eio
from engine.documents import TEXT, set_column
from engine.operator import Operator, Params, Resources, Result, register
from operators.columns import BUCKET, LANGUAGE, PERPLEXITY
from operators.paths import BUNDLED_MODELS, REPO_ROOT
from operators.text_norm import CodePointTable

log = logging.getLogger(__name__)

#: Model file names tried for a language, in order.
LM_SUFFIXES = (".arpa.bin", ".bin", ".klm", ".binary", ".arpa")
SP_SUFFIX = ".sp.model"
NO_MODEL = "none"
BUCKETS = ("head", "middle", "tail")
#: `cutoffs: auto`: cut-offs taken on the job's own documents at a barrier (`PerplexityBuckets`).
AUTO = "auto"
#: Percentiles a cut-offs file always stores besides the requested ones, so other choices work
#: without rescoring.
STORED_PERCENTILES = tuple(range(5, 100, 5))

# ---------------------------------------------------------------------------------------------
# Normalisation (same output as CCNet's text_normalizer.normalize with its defaults:
# accent=True, case=True, numbers=True, punct=1)
# ---------------------------------------------------------------------------------------------

#: Unicode punctuation -> ASCII, CCNet's table.
PUNCT_MAP = {
    "，": ",", "。": ".", "、": ",", "„": '"', "”": '"', "“": '"', "«": '"', "»": '"',
    "１": '"', "」": '"', "「": '"', "《": '"', "》": '"', "´": "'", "∶": ":", "：": ":",
    "？": "?", "！": "!", "（": "(", "）": ")", "；": ";", "–": "-", "—": " - ", "．": ". ",
    "～": "~", "’": "'", "…": "...", "━": "-", "〈": "<", "〉": ">", "【": "[", "】": "]",
    "％": "%", "►": "-",
}
_CONTROL = [*range(32), *range(127, 160)]
_ASCII_TABLE = {ord(d): "0" for d in "0123456789"} | {c: None for c in _CONTROL if c < 128}
_CONTROL_SET = frozenset(_CONTROL)
_PUNCT_CODES = {ord(k): v for k, v in PUNCT_MAP.items()}


class _FullTable(dict):
    """One str.translate table for non-ASCII text, applied after NFD, filled on first sight of each
    code point (classifying all 1.1 million up front costs most of a second per worker).

    CCNet's steps in order are: strip accents (drop category Mn after NFD), digits (\\d, i.e.
    category Nd) -> "0", punctuation table, delete control characters. They touch disjoint
    characters except "１" (a digit, so "0" wins, as in CCNet where digits go first), and no
    replacement produces a character a later step would change, so one table does all of them.
    """

    def __missing__(self, cp: int):
        if cp in _CONTROL_SET:
            v = None
        else:
            cat = unicodedata.category(chr(cp))
            v = None if cat == "Mn" else "0" if cat == "Nd" else _PUNCT_CODES.get(cp, cp)
        self[cp] = v
        return v


_FULL_TABLE = _FullTable()


def _full_table() -> dict[int, Any]:
    return _FULL_TABLE


def normalize(line: str) -> str:
    """CCNet's normalisation of one line (or of a whole text, as mine.py does)."""
    line = line.strip()
    if not line:
        return line
    line = line.lower()
    if line.isascii():
        return line.translate(_ASCII_TABLE)
    return unicodedata.normalize("NFD", line).translate(_full_table())


#: `_full_table` as a numpy table ("\n" is kept: it separates the lines of a batch); the few
#: multi-character replacements map to themselves there and are replaced afterwards (`_MULTI`).
_CODES = CodePointTable(_FULL_TABLE, keep=(ord("\n"),))
#: The multi-character replacements ("—" -> " - "), done after the gather.
_MULTI: dict[str, str] = {k: v for k, v in PUNCT_MAP.items() if len(v) > 1}
#: The ASCII part of the table as a bytes.translate table, "\n" kept.
_ASCII_BYTES = bytes(ord("0") if 48 <= c <= 57 else c for c in range(256))
_ASCII_DELETE = bytes(c for c in _CONTROL if c < 128 and c != ord("\n"))


def _translate(text: str) -> str:
    """`_full_table` applied to lowercased NFD text, "\n" kept: bytes.translate for ASCII text, else
    one gather over the UTF-32 code points. No replacement produces a character that another would
    change, so replacing the multi-character ones last gives str.translate's result."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_BYTES, _ASCII_DELETE).decode("ascii")
    mapped = _CODES.gather(np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32))
    out = mapped[mapped != CodePointTable.DELETED].tobytes().decode("utf-32-le", "surrogatepass")
    for k, v in _MULTI.items():
        if k in out:
            out = out.replace(k, v)
    return out


def normalize_documents(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """`normalize` of every line of every text (split on "\n"), done once over the whole batch:
    (the lines in order, the number of lines of each text).

    The lines are stripped, joined with "\n", and lowercased, decomposed (NFD) and mapped as one
    string. That equals normalising each line: "\n" is a starter that neither NFD reordering nor the
    lowercasing of a final sigma looks across (it is neither cased nor case-ignorable), and the
    table keeps it.
    """
    counts = np.fromiter((t.count("\n") + 1 for t in texts), dtype=np.int64, count=len(texts))
    joined = "\n".join([ln.strip() for ln in "\n".join(texts).split("\n")]).lower()
    if not joined.isascii():
        joined = unicodedata.normalize("NFD", joined)
    return _translate(joined).split("\n"), counts


def normalize_whole(text: str) -> str:
    """`normalize(text)` of a whole text (newlines deleted), through the batch table."""
    text = text.strip().lower()
    if not text.isascii():
        text = unicodedata.normalize("NFD", text)
    return _translate(text).replace("\n", "")


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

def resolve_models_dir(models: str | os.PathLike) -> Path:
    """"bundled" -> the repo's models/; a relative path is tried against CWD, then the repo root."""
    if str(models) == "bundled":
        return BUNDLED_MODELS
    p = Path(models).expanduser()
    if p.is_absolute() or p.exists():
        return p.resolve() if p.exists() else p
    alt = REPO_ROOT / p
    return alt if alt.exists() else p


def discover(models_dir: Path) -> dict[str, dict[str, Path | None]]:
    """{lang: {"lm": path, "sp": path or None}} for every language model in the folder."""
    found: dict[str, dict[str, Path | None]] = {}
    if not models_dir.is_dir():
        return found
    names = sorted(os.listdir(models_dir))
    for suffix in LM_SUFFIXES:  # earlier suffixes win (".arpa.bin" before ".bin")
        for name in names:
            if not name.endswith(suffix):
                continue
            lang = name[: -len(suffix)]
            if not lang or "." in lang or lang in found:
                continue
            sp = models_dir / f"{lang}{SP_SUFFIX}"
            found[lang] = {"lm": models_dir / name, "sp": sp if sp.is_file() else None}
    return found


def read_cutoff_tables(path: str | os.PathLike) -> dict[str, dict[int, float]]:
    """Every language's cut-offs in a file: {lang: {percentile: perplexity}}.

    JSON: {lang: {"30": x, "60": y, ...}} (keys starting with "_" are metadata), as `decant lm cutoffs`
    and `cutoffs: auto` (OUT/cutoffs.json) write it. CSV: CCNet's cutoff.csv (first column the
    percentile 0..100, one column per language). Local paths and fsspec URLs.
    """
    with eio.open_input(str(path), "rb") as f:
        raw = f.read().decode("utf-8")
    out: dict[str, dict[int, float]] = {}
    if str(path).endswith(".csv"):
        rows = list(csv.reader(raw.splitlines()))
        header, body = rows[0], rows[1:]
        for j, lang in enumerate(header[1:], start=1):
            table = {}
            for r in body:
                try:
                    table[int(float(r[0]))] = float(r[j])
                except (ValueError, IndexError):
                    continue
            if table:
                out[lang] = table
        return out
    for lang, table in json.loads(raw).items():
        if lang.startswith("_") or not isinstance(table, dict):
            continue
        out[lang] = {int(float(k)): float(v) for k, v in table.items() if _is_number(k)}
    return out


def load_cutoffs(path: str | os.PathLike, percentiles: list[int]) -> dict[str, tuple[float, ...]]:
    """Per-language perplexity cut-offs at the given percentiles (`read_cutoff_tables`' formats).

    A JSON file missing one of the percentiles for a language is an error naming the fix; a CSV
    column without them is left out (CCNet's file has every percentile)."""
    out: dict[str, tuple[float, ...]] = {}
    for lang, table in read_cutoff_tables(path).items():
        missing = [p for p in percentiles if p not in table]
        if missing:
            if str(path).endswith(".csv"):
                continue
            raise ValueError(f"{path}: language {lang!r} has no cut-off for percentile(s) {missing}; "
                             f"it has {sorted(table)} (recompute with `decant lm cutoffs`)")
        out[lang] = tuple(table[p] for p in percentiles)
    return out


def percentiles_from_counts(values: np.ndarray, counts: np.ndarray, percentiles) -> dict[int, float]:
    """`np.percentile` (linear) of the multiset in which `values[i]` occurs `counts[i]` times, without
    expanding it: perplexities are rounded to 0.1, so a language's histogram is small and exact,
    and histograms merge by adding counts (any order, any number of workers: the same result)."""
    order = np.argsort(values, kind="stable")
    v, cum = np.asarray(values, np.float64)[order], np.cumsum(np.asarray(counts, np.int64)[order])
    n = int(cum[-1])
    out = {}
    for p in percentiles:
        h = (p / 100) * (n - 1)                    # numpy's virtual index, its linear method
        lo = np.floor(h)
        t = h - lo
        a = v[np.searchsorted(cum, int(lo), side="right")]
        b = v[np.searchsorted(cum, min(int(lo) + 1, n - 1), side="right")]
        out[int(p)] = float(b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t)
    return out


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def cutoffs_path(cutoffs: str | None, models_dir: Path) -> Path | str:
    """Where a `cutoffs:` value points: a URL as given, a relative path tried against CWD then the repo
    root, None: the models folder's cutoffs.json."""
    if not cutoffs:
        return models_dir / "cutoffs.json"
    if "://" in cutoffs:
        return cutoffs
    path = Path(cutoffs).expanduser()
    if not path.is_absolute() and not path.exists():
        path = REPO_ROOT / path
    return path


class LanguageModel:
    """One language's tokenizer + KenLM model, and the CCNet document perplexity."""

    def __init__(self, lm_path: Path, sp_path: Path | None, tokenizer: str = "sentencepiece") -> None:
        import kenlm

        self.lm_path, self.sp_path, self.tokenizer = lm_path, sp_path, tokenizer
        self.sp = None
        if tokenizer == "sentencepiece":
            if sp_path is None:
                raise FileNotFoundError(f"{lm_path} has no SentencePiece model beside it "
                                        f"({lm_path.parent / (lm_path.name.split('.')[0] + SP_SUFFIX)}); "
                                        "use tokenizer: whitespace for a word-level model")
            import sentencepiece

            self.sp = sentencepiece.SentencePieceProcessor(model_file=str(sp_path))
        config = kenlm.Config()
        config.load_method = kenlm.LoadMethod.POPULATE_OR_READ  # as CCNet (load_method=2)
        self.lm = kenlm.Model(str(lm_path), config)

    def tokenize(self, lines: list[str]) -> list[list[str]]:
        """Normalised lines -> pieces (SentencePiece) or words (whitespace)."""
        if self.sp is None:
            return [ln.split() for ln in lines]
        return self.sp.encode(lines, out_type=str, num_threads=1)

    def score_lines(self, norm_lines: list[str]) -> tuple[float, int]:
        """(sum of log10 probabilities, number of tokens incl. one </s> per line)."""
        score = self.lm.score
        logp, n = 0.0, 0
        for pieces in self.tokenize(norm_lines):
            logp += score(" ".join(pieces), bos=True, eos=True)
            n += len(pieces) + 1
        return logp, n

    def perplexity(self, text: str, line_mode: str = "split") -> float | None:
        """One document's perplexity, line by line (the reference `perplexities` equals)."""
        if not text:
            return None
        if line_mode == "ccnet":
            norm = [normalize(text)]
        else:
            norm = [normalize(ln) for ln in text.split("\n")]
        logp, n = self.score_lines(norm)
        return round(10.0 ** (-logp / n), 1)

    def sentences(self, norm_lines: list[str]) -> tuple[list[bytes | str], np.ndarray]:
        """What KenLM scores for each normalised line (its pieces joined by spaces) and its number of pieces.

        SentencePiece gives pieces as bytes (`encode_pieces`); a piece of an unknown id comes out as the
        text it covers, not "<unk>", as with `tokenize`."""
        if self.sp is None:
            words = [ln.split() for ln in norm_lines]
            return [" ".join(w) for w in words], np.fromiter(map(len, words), np.int64, len(words))
        pieces = encode_pieces(self.sp, norm_lines)
        return [b" ".join(p) for p in pieces], np.fromiter(map(len, pieces), np.int64, len(pieces))

    def perplexities(self, texts: list[str], line_mode: str = "split") -> list[float]:
        """`perplexity` of every (non-empty) text, with one normalisation and one SentencePiece call
        for all of them; the KenLM calls are one per line, as its API allows, and each document's
        log-probability is summed in the same order as `score_lines`."""
        if not texts:
            return []
        if line_mode == "ccnet":
            lines, nlines = [normalize_whole(t) for t in texts], np.ones(len(texts), dtype=np.int64)
        else:
            lines, nlines = normalize_documents(texts)
        sents, pieces = self.sentences(lines)
        tokens = np.add.reduceat(pieces + 1, np.cumsum(nlines) - nlines).tolist()
        scores = list(map(self.lm.score, sents))        # bos=True, eos=True (the defaults)
        out = []
        i = 0
        for k, n in zip(nlines.tolist(), tokens):
            logp = 0.0
            for x in scores[i:i + k]:
                logp += x
            i += k
            out.append(round(10.0 ** (-logp / n), 1))
        return out


#: Fewest lines worth one batch call to SentencePiece: a batch call starts a thread (about as
#: costly as encoding 30 short lines), so fewer lines are encoded one call each.
BATCH_LINES = 256


_BYTES_PIECES: bool | None = None


def encode_pieces(sp, lines: list[str]) -> list[list[bytes]]:
    """SentencePiece pieces of every line as UTF-8 bytes (no Python string per piece; a sentencepiece
    too old to give bytes gives strings, encoded here)."""
    global _BYTES_PIECES
    if _BYTES_PIECES is None:
        try:
            _BYTES_PIECES = isinstance(sp.encode("a", out_type=bytes)[0], bytes)
        except (RuntimeError, ValueError, TypeError):
            _BYTES_PIECES = False
    if not _BYTES_PIECES:
        return [[p.encode("utf-8") for p in ps] for ps in sp.encode(lines, out_type=str, num_threads=1)]
    if len(lines) >= BATCH_LINES:
        return sp.encode(lines, out_type=bytes, num_threads=1)
    encode = sp.encode
    return [encode(line, out_type=bytes) for line in lines]


#: Per-process cache: (lm path, sp path, tokenizer) -> LanguageModel. Workers load each once.
_CACHE: dict[tuple[str, str, str], LanguageModel] = {}


def get_model(lm_path: Path, sp_path: Path | None, tokenizer: str) -> LanguageModel:
    key = (str(lm_path), str(sp_path), tokenizer)
    model = _CACHE.get(key)
    if model is None:
        model = _CACHE[key] = LanguageModel(lm_path, sp_path, tokenizer)
    return model


# ---------------------------------------------------------------------------------------------
# The operator
# ---------------------------------------------------------------------------------------------

class PerplexityParams(Params):
    #: Folder of `<lang>.arpa.bin` + `<lang>.sp.model`; "bundled" is the repo's models/.
    models: str = "bundled"
    #: Two percentiles of the per-language perplexity distribution: head < p0 <= middle < p1 <= tail.
    percentiles: list[int] = [30, 60]
    #: Cut-offs file (JSON written by `decant lm cutoffs` or by an earlier job's `cutoffs: auto`, or
    #: CCNet's cutoff.csv; a path or an fsspec URL); default `<models>/cutoffs.json`. `auto`: each
    #: language's percentiles over the perplexity of all the job's documents (a barrier), written
    #: to OUT/cutoffs.json; languages with fewer than `min_documents` use `<models>/cutoffs.json`.
    cutoffs: str | None = None
    #: cutoffs: auto: fewest scored documents of a language for its own cut-offs. With n documents the
    #: p-th percentile is known to about +-100*sqrt(p(1-p)/n) percentile points (100: +-4.6 at p30).
    min_documents: int = Field(100, ge=2)
    #: sentencepiece: `<lang>.sp.model` required; whitespace: split normalised text on spaces;
    #: auto: sentencepiece where the folder has one, else whitespace.
    tokenizer: Literal["sentencepiece", "whitespace", "auto"] = "sentencepiece"
    #: Drop documents whose language has no model (reason "no_model") instead of bucket "none".
    drop_missing: bool = False
    #: Only use models of these languages (None: every model in the folder).
    languages: list[str] | None = None
    #: split: score each line (CCNet's DocLM formula); ccnet: as CCNet's mine.py, one glued line.
    line_mode: Literal["split", "ccnet"] = "split"

    @field_validator("percentiles")
    @classmethod
    def _two_increasing(cls, v: list[int]) -> list[int]:
        if len(v) != 2 or not (0 < v[0] < v[1] < 100):
            raise ValueError("percentiles must be two increasing integers in (0, 100), e.g. [30, 60]")
        return v


@register
class Perplexity(Operator):
    name = "perplexity"
    inputs = (TEXT, LANGUAGE)
    outputs = (PERPLEXITY, BUCKET)
    resources = Resources(cpus=1.0, memory_mb=1024)
    Params = PerplexityParams

    def setup(self) -> None:
        p = self.params
        self.models_dir = resolve_models_dir(p.models)
        if not self.models_dir.is_dir():
            raise FileNotFoundError(f"perplexity: models folder {self.models_dir} not found "
                                    f"(models: {p.models!r}; train one with `decant lm train`)")
        available = discover(self.models_dir)
        if p.languages is not None:
            available = {k: v for k, v in available.items() if k in set(p.languages)}
        if p.tokenizer == "sentencepiece":
            bad = sorted(k for k, v in available.items() if v["sp"] is None)
            if bad:
                raise FileNotFoundError(
                    f"perplexity: no <lang>{SP_SUFFIX} in {self.models_dir} for {bad}; "
                    "set tokenizer: whitespace (word-level models) or auto")
        self.available = available
        self._models: dict[str, LanguageModel] = {}
        if p.cutoffs == AUTO:  # buckets come at the barrier (PerplexityBuckets)
            self.cutoffs = {}
            return
        cut_path = cutoffs_path(p.cutoffs, self.models_dir)
        if eio.exists(str(cut_path)):
            self.cutoffs = load_cutoffs(cut_path, p.percentiles)
            warn_on_mode_mismatch(cut_path, p.line_mode)
        elif p.cutoffs:
            raise FileNotFoundError(f"perplexity: cut-offs file {cut_path} not found")
        else:
            self.cutoffs = {}
        no_cut = sorted(set(available) - set(self.cutoffs))
        if no_cut:
            log.warning("perplexity: no cut-offs for %s in %s: their bucket is %r", no_cut, cut_path, NO_MODEL)

    def output_columns(self) -> tuple[str, ...]:
        return (PERPLEXITY,) if self.params.cutoffs == AUTO else (PERPLEXITY, BUCKET)

    def expand(self) -> list[Operator]:
        """`cutoffs: auto` runs as this step (scores only) and a barrier that takes the cut-offs on
        every document of the job and buckets them."""
        if self.params.cutoffs != AUTO:
            return [self]
        from operators.perplexity_buckets import PerplexityBuckets

        return [self, PerplexityBuckets(**self.params.model_dump(exclude_unset=True))]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_models", None)  # kenlm / sentencepiece objects do not pickle
        if "_models" in self.__dict__:
            state["_ready"] = False
        return state

    preload_before_fork = True

    def preload(self) -> None:
        """Every available language's model (a job's languages are known only once read)."""
        self.ensure_setup()
        for lang in sorted(self.available):
            self.model(lang)

    def model(self, lang: str) -> LanguageModel | None:
        m = self._models.get(lang)
        if m is None:
            entry = self.available.get(lang)
            if entry is None:
                return None
            tok = self.params.tokenizer
            if tok == "auto":
                tok = "sentencepiece" if entry["sp"] is not None else "whitespace"
            m = self._models[lang] = get_model(entry["lm"], entry["sp"], tok)
        return m

    def bucket(self, lang: str, ppl: float | None) -> str:
        cuts = self.cutoffs.get(lang)
        if ppl is None or cuts is None:
            return NO_MODEL
        if ppl < cuts[0]:
            return BUCKETS[0]
        if ppl < cuts[1]:
            return BUCKETS[1]
        return BUCKETS[2]

    def process(self, batch: pa.RecordBatch) -> Result:
        """Rows grouped by language (Arrow dictionary encoding); each language's non-empty texts are
        scored in one `perplexities` call and bucketed in numpy."""
        n = batch.num_rows
        text = batch.column(TEXT)
        ppl = np.full(n, np.nan)
        buckets = np.full(n, NO_MODEL, dtype=object)
        has_model = np.zeros(n, dtype=bool)
        if LANGUAGE in batch.schema.names and n:
            codes = pc.dictionary_encode(batch.column(LANGUAGE).cast(pa.string()))
            index = pc.fill_null(codes.indices, -1).to_numpy(zero_copy_only=False)
            nonempty = np.asarray(pc.fill_null(pc.greater(pc.binary_length(text), 0), False), dtype=bool)
            texts = None
            for code, lang in enumerate(codes.dictionary.to_pylist()):
                m = self.model(lang) if lang else None
                if m is None:
                    continue
                rows = np.flatnonzero(index == code)
                has_model[rows] = True
                rows = rows[nonempty[rows]]
                if not len(rows):
                    continue
                if texts is None:
                    texts = text.to_pylist()
                values = np.asarray(m.perplexities([texts[i] for i in rows.tolist()], self.params.line_mode))
                ppl[rows] = values
                cuts = self.cutoffs.get(lang)
                if cuts is not None:
                    buckets[rows] = np.where(values < cuts[0], BUCKETS[0],
                                             np.where(values < cuts[1], BUCKETS[1], BUCKETS[2]))
        batch = set_column(batch, PERPLEXITY, pa.array(ppl, type=pa.float64(), mask=np.isnan(ppl)))
        if self.params.cutoffs != AUTO:
            batch = set_column(batch, BUCKET, pa.array(buckets.tolist(), type=pa.string()))
        if self.params.drop_missing:
            return Result(batch, has_model, np.where(has_model, None, "no_model").astype(object))
        return Result(batch)


def warn_on_mode_mismatch(path: Path, line_mode: str) -> None:
    """Cut-offs only mean something for the scoring mode they were computed in: say so when they differ
    (CCNet's own cutoff.csv was computed on whole documents, i.e. `line_mode: ccnet`)."""
    if str(path).endswith(".csv"):
        recorded = "ccnet"
    else:
        try:
            meta = eio.read_json(str(path)).get("_meta", {}).get("languages", {})
        except (OSError, ValueError, AttributeError):
            return
        modes = {v.get("line_mode") for v in meta.values() if isinstance(v, dict) and v.get("line_mode")}
        if len(modes) != 1:
            return
        recorded = modes.pop()
    if recorded != line_mode:
        logging.getLogger("decant.perplexity").warning(
            "perplexity: cut-offs in %s were computed with line_mode=%s but the operator scores with "
            "line_mode=%s; buckets will be skewed (set line_mode: %s or recompute with decant lm cutoffs)",
            path, recorded, line_mode, recorded)
