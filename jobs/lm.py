"""`decant lm`: train the perplexity models and compute their cut-offs (CCNet's SentencePiece + KenLM).

    decant lm train --lang en --corpus wiki.txt -o models/
    decant lm cutoffs -i sample.jsonl.gz -m models/ [-o models/cutoffs.json] [-p 30 -p 60]
    decant lm bundle --data ../shared/data -o models/       (the bundled models, operators/lm_bundled.py)

Also runnable as `python -m jobs.lm ...`. Heavy modules are imported inside the commands.
"""
from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Perplexity models: SentencePiece + KenLM per language, and their cut-offs.",
                  no_args_is_help=True, add_completion=False)


@app.command()
def train(
    lang: str = typer.Option(..., "--lang", "-l", help="Language code; the files are <lang>.sp.model, <lang>.arpa.bin"),
    corpus: list[Path] = typer.Option(..., "--corpus", "-c", help="Text (one line per line), JSONL(.gz) or Parquet "
                                      "with a text field, or a decant output folder. Repeatable."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder"),
    vocab_size: int = typer.Option(16000, help="SentencePiece vocabulary (upper bound; lowered on small corpora)"),
    order: int = typer.Option(5, help="n-gram order"),
    prune: str = typer.Option("0 1 1 1 2", help="lmplz --prune thresholds per order ('0': no pruning)"),
    memory: str = typer.Option("20%", help="lmplz/build_binary -S memory for sorting"),
    quantize: int = typer.Option(8, help="build_binary -q/-b bits (0: no quantisation)"),
    discount_fallback: bool = typer.Option(True, help="lmplz --discount_fallback (needed on small corpora)"),
    wikitext: bool = typer.Option(False, help="Corpus is WikiText: drop headings and <unk>, undo its tokenisation"),
    character_coverage: float | None = typer.Option(None, help="SentencePiece character coverage "
                                                       "(default 0.9995 for zh/ja/ko/th..., else 1.0)"),
    max_lines: int = typer.Option(5_000_000, help="Use at most this many lines"),
    text_field: str = typer.Option("text", help="Field holding the text in JSONL/Parquet"),
    keep_arpa: bool = typer.Option(False, help="Also keep <lang>.arpa"),
) -> None:
    """Train <lang>.sp.model (unigram SentencePiece) and <lang>.arpa.bin (KenLM, pruned, quantised trie)."""
    from operators.lm_train import KenLMNotFound
    from operators.lm_train import train as _train

    try:
        result = _train(lang, corpus, out, vocab_size=vocab_size, order=order,
                        prune=[int(x) for x in prune.split()], memory=memory,
                        quantize=quantize or None, discount_fallback=discount_fallback, wikitext=wikitext,
                        character_coverage=character_coverage, max_lines=max_lines,
                        text_field=text_field, keep_arpa=keep_arpa)
    except KenLMNotFound as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(result, indent=1))


@app.command()
def cutoffs(
    inputs: list[Path] = typer.Option(..., "--input", "-i", help="JSONL(.gz)/Parquet with text (+ language), "
                                      "a decant output folder, or a text file with --lang. Repeatable."),
    models: str = typer.Option("bundled", "--models", "-m", help="Models folder ('bundled': the repo's models/)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="Cut-offs file (default <models>/cutoffs.json)"),
    percentiles: list[int] = typer.Option([30, 60], "--percentile", "-p", help="Percentiles (repeatable); "
                                          "5, 10, ..., 95 are stored as well"),
    sample: int = typer.Option(10_000, help="Documents scored per language at most (reservoir sample)"),
    lang: str | None = typer.Option(None, help="Language of every input document (needed for text files)"),
    lines_per_doc: int = typer.Option(0, help="Text files: group this many lines into one document"),
    merge: bool = typer.Option(True, help="Keep languages already in the file that are not scored now"),
    min_docs: int = typer.Option(10, help="Skip languages with fewer scored documents"),
    source: str | None = typer.Option(None, help="Describe the inputs in the file's metadata (default: paths)"),
) -> None:
    """Score a sample of documents and write per-language perplexity percentiles for the operator."""
    from operators.lm_train import cutoffs as _cutoffs

    result = _cutoffs(inputs, models, out, percentiles=percentiles, sample=sample, lang=lang,
                      lines_per_doc=lines_per_doc, merge=merge, min_docs=min_docs,
                      source=source)
    typer.echo(json.dumps(result, indent=1))


@app.command()
def bundle(
    data: Path = typer.Option(..., "--data", help="The shared data folder (text/lingua, text/ud, text/wikitext-2)"),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (the repo's models/ for the bundled models)"),
    lang: list[str] = typer.Option([], "--lang", "-l", help="Only these languages (repeatable; default: all 75)"),
) -> None:
    """Train the bundled models of every language from the real text in DATA (operators/lm_bundled.py)."""
    from operators.lm_bundled import build
    from operators.lm_train import KenLMNotFound

    try:
        report = build(data, out, langs=lang or None, log=lambda s: typer.echo(s, err=True))
    except KenLMNotFound as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(report, indent=1))


if __name__ == "__main__":
    app()
