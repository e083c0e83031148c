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
no model get bucket "none" (or are dropped with reason "no_model" when `drop_missing`).

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
from pydantic import field_validator

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


def load_cutoffs(path: Path, percentiles: list[int]) -> dict[str, tuple[float, ...]]:
    """Per-language perplexity cut-offs at the given percentiles.

    JSON: {lang: {"30": x, "60": y, ...}} (keys starting with "_" are metadata).
    CSV: CCNet's cutoff.csv (first column the percentile 0..100, one column per language).
    """
    out: dict[str, tuple[float, ...]] = {}
    if path.suffix == ".csv":
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        header, body = rows[0], rows[1:]
        by_pct = {int(float(r[0])): r for r in body if r and r[0] != ""}
        for j, lang in enumerate(header[1:], start=1):
            try:
                out[lang] = tuple(float(by_pct[p][j]) for p in percentiles)
            except (KeyError, ValueError, IndexError):
                continue
        return out
    data = json.loads(path.read_text())
    for lang, table in data.items():
        if lang.startswith("_") or not isinstance(table, dict):
            continue
        keyed = {str(int(float(k))): v for k, v in table.items() if _is_number(k)}
        missing = [p for p in percentiles if str(p) not in keyed]
        if missing:
            raise ValueError(f"{path}: language {lang!r} has no cut-off for percentile(s) {missing}; "
                             f"it has {sorted(keyed, key=int)} (recompute with `decant lm cutoffs`)")
        out[lang] = tuple(float(keyed[str(p)]) for p in percentiles)
    return out


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


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
    #: Cut-offs file (JSON written by `decant lm cutoffs`, or CCNet's cutoff.csv);
    #: default `<models>/cutoffs.json`.
    cutoffs: str | None = None
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
        cut_path = Path(p.cutoffs) if p.cutoffs else self.models_dir / "cutoffs.json"
        if p.cutoffs and not cut_path.is_absolute() and not cut_path.exists():
            cut_path = REPO_ROOT / cut_path
        if cut_path.is_file():
            self.cutoffs = load_cutoffs(cut_path, p.percentiles)
            _warn_on_mode_mismatch(cut_path, p.line_mode)
        elif p.cutoffs:
            raise FileNotFoundError(f"perplexity: cut-offs file {cut_path} not found")
        else:
            self.cutoffs = {}
        no_cut = sorted(set(available) - set(self.cutoffs))
        if no_cut:
            log.warning("perplexity: no cut-offs for %s in %s: their bucket is %r", no_cut, cut_path, NO_MODEL)
        self._models: dict[str, LanguageModel] = {}

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
        batch = set_column(batch, BUCKET, pa.array(buckets.tolist(), type=pa.string()))
        if self.params.drop_missing:
            return Result(batch, has_model, np.where(has_model, None, "no_model").astype(object))
        return Result(batch)


def _warn_on_mode_mismatch(path: Path, line_mode: str) -> None:
    """Cut-offs only mean something for the scoring mode they were computed in: say so when they differ
    (CCNet's own cutoff.csv was computed on whole documents, i.e. `line_mode: ccnet`)."""
    import json
    import logging
    if path.suffix == ".csv":
        recorded = "ccnet"
    else:
        try:
            meta = json.loads(path.read_text()).get("_meta", {}).get("languages", {})
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
