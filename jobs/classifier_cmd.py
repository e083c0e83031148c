"""`decant classifier train` and `decant importance train`: the models of the model-based signals.

    decant classifier train --positive GOOD... --negative CRAWL... -o models/mine.ftz
    decant importance train --target BOOKS... --source CRAWL... -o models/mine.npz

Inputs are JSONL(.gz) or Parquet documents (a `text` field, or `--text-field`) or decant output
folders, so a sample of one's own crawl output serves as negatives or source. A share of each side
is held out; the figures measured on it are printed and stored in `<model>.json` beside the model.
Heavy modules are imported inside the commands.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

classifier_app = typer.Typer(help="fastText quality classifiers for the `classifier` operator.",
                             no_args_is_help=True, add_completion=False)
importance_app = typer.Typer(help="Hashed n-gram importance models for the `importance` operator.",
                             no_args_is_help=True, add_completion=False)

_INPUT_HELP = "JSONL(.gz)/Parquet documents, folders or globs of them, or a decant output folder. Repeatable."

# options both training commands take, declared once
HeldoutOption = Annotated[float, typer.Option(min=0.0, max=0.9, help="Share of each side held out for the figures")]
LanguageOption = Annotated[Optional[str], typer.Option(
    "--language", help="Language the model is for (recorded; the operator scores only that language). Also keeps "
                       "only documents of that language where inputs have a language column.")]
TextFieldOption = Annotated[str, typer.Option(help="Field holding the text in JSONL/Parquet")]
MaxDocsOption = Annotated[Optional[int], typer.Option(min=2, help="Use a random sample of at most this many per side")]
SeedOption = Annotated[int, typer.Option(help="Seed of the held-out split, the sampling and the training")]
NoteOption = Annotated[Optional[str], typer.Option(help="Describe the inputs in the model's JSON")]


def _read(paths: list[str], text_field: str, language: Optional[str], max_docs: Optional[int], seed: int,
          what: str) -> list[str]:
    from operators.signal_training import read_texts

    try:
        texts = read_texts(paths, text_field=text_field, languages=[language] if language else None,
                           max_docs=max_docs, seed=seed)
    except (FileNotFoundError, ValueError) as e:
        typer.echo(f"error: --{what}: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{what}: {len(texts):,} documents from {len(paths)} input(s)", err=True)
    return texts


def _report(summary: dict, heldout: dict, keys: tuple[str, ...]) -> None:
    figures = ", ".join(f"{k} {heldout[k]}" for k in keys if k in heldout)
    typer.echo(f"held out: {figures}" if figures else "held out: nothing (use --heldout > 0)", err=True)
    typer.echo(json.dumps(summary, indent=1, sort_keys=True))


@classifier_app.command("train")
def classifier_train(
    positive: list[str] = typer.Option(..., "--positive", help="Documents of the kind to score high. " + _INPUT_HELP),
    negative: list[str] = typer.Option(..., "--negative", help="Documents to score low. " + _INPUT_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Model file (.ftz: quantised, small; .bin: full)"),
    heldout: HeldoutOption = 0.1,
    epoch: int = typer.Option(20, min=1, help="fastText epochs"),
    lr: float = typer.Option(0.2, help="fastText learning rate"),
    dim: int = typer.Option(16, min=1, help="Embedding size"),
    word_ngrams: int = typer.Option(2, min=1, help="Word n-gram length (2: words and bigrams)"),
    min_count: int = typer.Option(2, min=1, help="Words seen fewer times are ignored"),
    bucket: int = typer.Option(200_000, min=1, help="Hash buckets for word n-grams"),
    quantize: Optional[bool] = typer.Option(None, "--quantize/--no-quantize", help="Default: when -o ends in .ftz"),
    cutoff: int = typer.Option(50_000, help="Quantisation: words and n-grams kept"),
    threshold: float = typer.Option(0.5, min=0.0, max=1.0, help="Score at which held-out precision/recall are taken"),
    shuffled_negatives: float = typer.Option(0.0, min=0.0, max=1.0, help="Add word-shuffled copies of this share "
                                             "of the training positives as negatives (teaches word order)"),
    language: LanguageOption = None,
    text_field: TextFieldOption = "auto",
    max_docs: MaxDocsOption = None,
    seed: SeedOption = 0,
    note: NoteOption = None,
) -> None:
    """Train a fastText classifier, positive vs negative, with held-out precision/recall/AUC."""
    from operators.signal_training import train_classifier

    pos = _read(positive, text_field, language, max_docs, seed, "positive")
    neg = _read(negative, text_field, language, max_docs, seed, "negative")
    meta = _train(train_classifier, pos, neg, out, heldout=heldout, seed=seed, epoch=epoch, lr=lr, dim=dim,
                  word_ngrams=word_ngrams, min_count=min_count, bucket=bucket, quantize=quantize,
                  cutoff=cutoff, threshold=threshold, shuffled_negatives=shuffled_negatives,
                  language=language, inputs={"positive": positive, "negative": negative, "note": note})
    _report(meta, meta["heldout"], ("auc", "precision", "recall", "f1", "auc_vs_shuffled"))


@importance_app.command("train")
def importance_train(
    target: list[str] = typer.Option(..., "--target", help="Text of the kind wanted (books, curated prose). "
                                     + _INPUT_HELP),
    source: list[str] = typer.Option(..., "--source", help="Text of the raw pool (the crawl). " + _INPUT_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Model file (.npz)"),
    buckets: int = typer.Option(1 << 18, min=2, help="Hash buckets per model"),
    smoothing: float = typer.Option(1.0, help="Additive smoothing of the bucket counts (> 0)"),
    heldout: HeldoutOption = 0.1,
    language: LanguageOption = None,
    text_field: TextFieldOption = "auto",
    max_docs: MaxDocsOption = None,
    seed: SeedOption = 0,
    note: NoteOption = None,
) -> None:
    """Fit target and source hashed uni/bigram distributions (DSIR) with a held-out AUC."""
    from operators.signal_training import train_importance

    tgt = _read(target, text_field, language, max_docs, seed, "target")
    src = _read(source, text_field, language, max_docs, seed, "source")
    summary = _train(train_importance, tgt, src, out, buckets=buckets, smoothing=smoothing, heldout=heldout,
                     seed=seed, language=language, inputs={"target": target, "source": source, "note": note})
    _report(summary, summary["heldout"], ("auc", "auc_length_corrected"))


def _train(train, *args, **kwargs) -> dict:
    """Run a training function; what it refuses (ValueError) is one `error:` line, exit 2."""
    try:
        return train(*args, **kwargs)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
