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
from pydantic import Field, field_validator

from engine import io as eio
from engine.documents import TEXT, set_column
from engine.operator import Operator, Params, Resources, Result, register
from operators.columns import BUCKET, LANGUAGE, PERPLEXITY
from operators.paths import BUNDLED_MODELS, REPO_ROOT

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
_FULL_TABLE: dict[int, Any] | None = None


def _full_table() -> dict[int, Any]:
    """One str.translate table for non-ASCII text, applied after NFD.

    CCNet's steps in order are: strip accents (drop category Mn after NFD), digits (\\d, i.e.
    category Nd) -> "0", punctuation table, delete control characters. They touch disjoint
    characters except "１" (a digit, so "0" wins, as in CCNet where digits go first), and no
    replacement produces a character a later step would change, so one table does all of them.
    """
    global _FULL_TABLE
    if _FULL_TABLE is None:
        table: dict[int, Any] = {ord(k): v for k, v in PUNCT_MAP.items()}
        for cp in range(0x110000):
            cat = unicodedata.category(chr(cp))
            if cat == "Mn":
                table[cp] = None
            elif cat == "Nd":
                table[cp] = "0"
        for cp in _CONTROL:
            table[cp] = None
        _FULL_TABLE = table
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
        if not text:
            return None
        if line_mode == "ccnet":
            norm = [normalize(text)]
        else:
            norm = [normalize(ln) for ln in text.split("\n")]
        logp, n = self.score_lines(norm)
        return round(10.0 ** (-logp / n), 1)


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
        n = batch.num_rows
        texts = batch.column(TEXT).to_pylist()
        langs = batch.column(LANGUAGE).to_pylist() if LANGUAGE in batch.schema.names else [None] * n
        ppl = np.full(n, np.nan)
        buckets = np.full(n, NO_MODEL, dtype=object)
        has_model = np.zeros(n, dtype=bool)
        groups: dict[str, list[int]] = {}
        for i, lang in enumerate(langs):
            groups.setdefault(lang or "", []).append(i)
        for lang, rows in groups.items():
            m = self.model(lang) if lang else None
            if m is None:
                continue
            has_model[rows] = True
            for i in rows:
                v = m.perplexity(texts[i] or "", self.params.line_mode)
                if v is not None:
                    ppl[i] = v
                buckets[i] = self.bucket(lang, v)
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
