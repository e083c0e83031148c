"""extract: main-text extraction from the `html` column into `text`, by trafilatura or resiliparse.

Rows with HTML are extracted; rows without HTML but with text (WET, JSONL, text/plain payloads)
pass through unchanged, so the same job runs on WARC and WET input.

Engines (`engine:`): "trafilatura" (the default: pure Python over lxml, the higher precision) or
"resiliparse" (its `extract_plain_text` with main-content heuristics, native code on the lexbor
parser: about seven times the pages per CPU-second for some precision; `decant bench extract` prints
both). Parameters that belong to one engine are refused with the other.

Drop reasons: "too_large" (HTML over `max_html_bytes`, nothing attempted), "timeout" (the
per-document budget ran out), "extract_error" (the engine raised), "no_text" (nothing, or fewer
than `min_chars` characters, came out; also rows with neither HTML nor text).

Time budget. trafilatura is slow in Python code, where a signal can interrupt it. In the main thread
of a process (the local executor's workers, Ray sync actors) each document runs under an interval
timer (ITIMER_PROF, CPU time, by default, so the decision does not depend on machine load and reruns
agree; ITIMER_REAL with timeout_clock=wall) whose handler raises `_Timeout`, a BaseException so that
trafilatura's own `except Exception` blocks cannot swallow it. Off the main thread signals are
unavailable, so the batch is sent to a persistent child process (a fresh interpreter, so safe in
threaded parents) that applies the same timer per document and streams results back.
resiliparse spends its time in native code, where a Python signal handler runs only once the call
returns: a page over budget is still dropped as "timeout", but only a kill stops a page that never
returns (deeply nested markup is quadratic in its main-content pass: 10,000 nested divs take 2.5 s,
100,000 several minutes), so with resiliparse `isolation: auto` always uses the child.
The parent watches the child: it kills and restarts it, marking the document at the head of the
queue "timeout", when the child has spent more than 2 x timeout_s + 1 s of CPU on one document
(timeout_clock=cpu), or has not answered for 3 x timeout_s + 10 s of wall time (a stall).
`isolation: process` forces the child in any thread and with either engine.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import unicodedata
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, ValidationInfo, field_validator

from engine.documents import TEXT, URL, set_column
from engine.operator import Operator, Params, Resources, Result, register
from operators.columns import HTML

if TYPE_CHECKING:
    import psutil

# Status codes for one document (kept small so results pickle cheaply).
OK, NO_TEXT, TIMEOUT, ERROR, TOO_LARGE = "ok", "no_text", "timeout", "extract_error", "too_large"


class _Timeout(BaseException):
    """Raised by the alarm handler; a BaseException so `except Exception` in libraries lets it through."""


_ARMED = [False]


def _on_alarm(signum, frame):
    if _ARMED[0]:
        _ARMED[0] = False
        raise _Timeout()


#: The budget's clock -> (interval timer, its signal, a clock to measure elapsed time with).
_CLOCKS = {
    "cpu": (signal.ITIMER_PROF, signal.SIGPROF, time.process_time),
    "wall": (signal.ITIMER_REAL, signal.SIGALRM, time.monotonic),
}


@contextlib.contextmanager
def _alarm_handler(clock: str):
    """Install the timer signal's handler for the duration of a batch (main thread only).

    A timer someone else had set on the same clock (pytest-timeout's SIGALRM, a supervisor) is
    paused and re-armed at the end with its remaining time (at once if it expired meanwhile),
    so it fires late, never lost.
    """
    which, signum, now = _CLOCKS[clock]
    previous = signal.signal(signum, _on_alarm)
    outer_left, outer_interval = signal.setitimer(which, 0)
    start = now()
    try:
        yield
    finally:
        _ARMED[0] = False
        signal.setitimer(which, 0)
        signal.signal(signum, previous)
        if outer_left > 0:
            left = max(outer_left - (now() - start), 1e-3)
            signal.setitimer(which, left, outer_interval)


class _Trafilatura:
    """trafilatura.extract (or bare_extraction, for the title) with the operator's options."""

    def __init__(self, opts: dict[str, Any]) -> None:
        import trafilatura  # noqa: F401 - imported here so the parent of a child need not

        self.opts = opts
        # trafilatura logs a warning or an error for every page it discards; the engine records
        # those pages as rejects with a reason, so the log lines are noise in worker logs.
        for name in ("trafilatura", "htmldate", "justext", "courlan"):
            logging.getLogger(name).setLevel(logging.CRITICAL)

    def __call__(self, html: str | bytes, url: str | None) -> tuple[str | None, str | None]:
        import trafilatura

        if isinstance(html, bytes):  # UTF-8 from Arrow (the child's input)
            html = html.decode("utf-8", errors="replace")
        o = self.opts
        kw = {
            "url": url,
            "fast": o["fast"],
            "favor_precision": o["mode"] == "precision",
            "favor_recall": o["mode"] == "recall",
            "include_comments": o["include_comments"],
            "include_tables": o["include_tables"],
            "deduplicate": False,
        }
        if not o["title"]:
            return trafilatura.extract(html, output_format="txt", **kw), None
        doc = trafilatura.bare_extraction(html, with_metadata=True, output_format="python", **kw)
        if doc is None:
            return None, None
        text = doc.text or ""
        if o["include_comments"] and getattr(doc, "comments", None):
            text = f"{text}\n{doc.comments}".strip()
        return unicodedata.normalize("NFC", text), doc.title


class _Resiliparse:
    """resiliparse's extract_plain_text; with `title`, the page is parsed once, for the title and the text."""

    def __init__(self, opts: dict[str, Any]) -> None:
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.html import HTMLTree

        self.extract_plain_text, self.parse = extract_plain_text, HTMLTree.parse
        self.title = opts["title"]
        self.kw = {k: opts[k] for k in RESILIPARSE_ONLY}
        self.kw["comments"] = opts["include_comments"]

    def __call__(self, html: str | bytes, url: str | None) -> tuple[str | None, str | None]:
        if isinstance(html, bytes):  # UTF-8 from Arrow (the child's input)
            html = html.decode("utf-8", errors="replace")
        if self.title:
            tree = self.parse(html)
            text, title = self.extract_plain_text(tree, **self.kw).strip(), (tree.title or "").strip() or None
        else:  # a string directly: faster than building the Python-side tree first
            text, title = self.extract_plain_text(html, **self.kw).strip(), None
        # NFC as trafilatura's output, so that hashes and dedup downstream see one form per engine
        return unicodedata.normalize("NFC", text), title


class _Extractor:
    """One document through the configured engine, alone or under the timer."""

    def __init__(self, opts: dict[str, Any]) -> None:
        self.opts = opts
        self.engine = (_Resiliparse if opts["engine"] == "resiliparse" else _Trafilatura)(opts)

    def __call__(self, html: str | bytes, url: str | None) -> tuple[str | None, str | None]:
        return self.engine(html, url)

    def timed(self, html: str | bytes, url: str | None, timeout_s: float) -> tuple[str, str | None, str | None]:
        """One document under the timer (the handler must be installed: main thread only)."""
        which = _CLOCKS[self.opts["clock"]][0]
        try:
            _ARMED[0] = True
            signal.setitimer(which, timeout_s)
            try:
                text, title = self(html, url)
            finally:
                _ARMED[0] = False
                signal.setitimer(which, 0)
        except _Timeout:
            return TIMEOUT, None, None
        except Exception:  # noqa: BLE001 - one bad page must not fail the batch
            return ERROR, None, None
        return OK, text, title


def _child_main(rfd: int, wfd: int, opts: dict[str, Any], timeout_s: float) -> None:
    """The child process: extract lists of (index, html, url), answer one result per item.

    Each answer carries the child's CPU time after the document, from which the parent measures
    what the next document has spent (its watch on native code that never returns)."""
    from multiprocessing.connection import Connection

    rconn, wconn = Connection(rfd, writable=False), Connection(wfd, readable=False)
    ex = _Extractor(opts)
    wconn.send(("ready", time.process_time()))
    with _alarm_handler(opts["clock"]):
        while True:
            try:
                items = rconn.recv()
            except (EOFError, OSError):  # the parent went away
                return
            if items is None:
                return
            for idx, html, url in items:
                status, text, title = ex.timed(html, url, timeout_s)
                wconn.send((idx, status, text, title, time.process_time()))


class _Child:
    """A persistent child process that extracts batches; restarted when it has to be killed.

    Started with subprocess (a fresh interpreter running `_child_main`), not multiprocessing: no
    fork of a threaded parent, and no re-import of the parent's __main__ (which spawn does, and
    which breaks under scripts and some worker entry points). Pipes carry pickled messages.
    """

    START_TIMEOUT_S = 120.0
    #: How often the parent looks at a child that has not answered yet.
    WATCH_S = 0.2
    PIPE_BYTES = 1 << 20

    def __init__(self, opts: dict[str, Any], timeout_s: float) -> None:
        self.opts, self.timeout_s = opts, timeout_s
        self.proc: subprocess.Popen | None = None
        self.send_conn = self.recv_conn = None
        self.usage: psutil.Process | None = None  # the child's CPU counters
        self.cpu_mark = 0.0  # the child's CPU seconds when it last answered
        self.spent = 0.0  # CPU seconds of children already gone

    def _start(self) -> None:
        from multiprocessing.connection import Connection

        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        for fd in (to_child_w, from_child_w):
            # a batch of pages is megabytes: a 1 MB pipe (Linux) saves most of the context switches
            with contextlib.suppress(OSError, AttributeError):
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, self.PIPE_BYTES)
        code = (f"from operators.extract import _child_main; "
                f"_child_main({to_child_r}, {from_child_w}, {self.opts!r}, {self.timeout_s!r})")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")])
        try:
            proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=(to_child_r, from_child_w),
                                    stdin=subprocess.DEVNULL, env=env)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.proc = proc
        self.send_conn = Connection(to_child_w, readable=False)
        self.recv_conn = Connection(from_child_r, writable=False)
        try:
            msg = self.recv_conn.recv() if self.recv_conn.poll(self.START_TIMEOUT_S) else None
        except (EOFError, OSError):
            msg = None
        if not (isinstance(msg, tuple) and msg[0] == "ready"):
            self._kill()
            raise RuntimeError("extract: the child process did not start")
        self.cpu_mark = msg[1]
        import psutil  # here, not at module level: 11 ms of every job's plan, extract or not

        self.usage = psutil.Process(proc.pid)

    def _kill(self) -> None:
        if self.proc is not None:
            self.spent += self._child_cpu()
            self.proc.kill()
            self.proc.wait()
            self.send_conn.close()
            self.recv_conn.close()
        self.proc = self.send_conn = self.recv_conn = self.usage = None

    def _child_cpu(self) -> float:
        import psutil

        try:
            t = self.usage.cpu_times()
        except (psutil.Error, AttributeError):
            return self.cpu_mark
        return t.user + t.system

    def cpu_seconds(self) -> float:
        """CPU seconds of this child and the ones it replaced (what extraction cost off the worker)."""
        return self.spent + (self._child_cpu() if self.proc is not None else 0.0)

    def _answered(self, hard_deadline: float) -> bool:
        """Wait for the child's next answer; False when the document it works on must be given up:
        no answer for hard_deadline seconds, or (CPU clock) more CPU spent on it than the watch allows."""
        cpu_limit = 2.0 * self.timeout_s + 1.0
        start = time.monotonic()
        while not self.recv_conn.poll(self.WATCH_S):
            if time.monotonic() - start > hard_deadline:
                return False
            if self.opts["clock"] == "cpu" and self._child_cpu() - self.cpu_mark > cpu_limit:
                return False
        return True

    def close(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(Exception):
                self.send_conn.send(None)
                self.proc.wait(2.0)
        self._kill()

    def run(self, items: list[tuple[int, bytes, str | None]]) -> dict[int, tuple[str, str | None, str | None]]:
        out: dict[int, tuple[str, str | None, str | None]] = {}
        # The child enforces timeout_s itself; this deadline and the CPU watch of `_answered` only
        # catch a child that stopped answering (stuck in native code, or dead).
        hard_deadline = 3.0 * self.timeout_s + 10.0
        pending = list(items)
        while pending:
            if self.proc is None or self.proc.poll() is not None:
                self._kill()
                self._start()
            try:
                self.send_conn.send(pending)
            except OSError:  # the child died between batches: restart and resend
                self._kill()
                continue
            done = 0
            for idx, _, _ in pending:
                try:
                    if self._answered(hard_deadline):
                        ridx, status, text, title, self.cpu_mark = self.recv_conn.recv()
                        out[ridx] = (status, text, title)
                        done += 1
                        continue
                    status = TIMEOUT  # the document at the head of the queue hung the child
                except (EOFError, OSError):
                    status = ERROR  # the child died on this document (a crash in C code)
                self._kill()
                out[idx] = (status, None, None)
                done += 1
                break
            pending = pending[done:]
        return out


#: Parameters that only one engine reads (refused with the other).
TRAFILATURA_ONLY = ("mode", "include_tables", "fast")
RESILIPARSE_ONLY = ("main_content", "preserve_formatting", "list_bullets", "alt_texts", "links",
                    "form_fields", "noscript", "post_meta", "skip_elements")


class ExtractParams(Params):
    #: Which extractor: "trafilatura" (higher precision) or "resiliparse" (about 7x the pages/s).
    #: Declared first: the engine-specific fields below are checked against it.
    engine: Literal["trafilatura", "resiliparse"] = "trafilatura"
    #: Per-document time budget; a page that takes longer is dropped with "timeout".
    timeout_s: float = Field(5.0, gt=0)
    #: What timeout_s measures: "cpu" = CPU time of the worker (ITIMER_PROF: the same page gets
    #: the same decision however loaded the machine is), "wall" = elapsed time (ITIMER_REAL).
    timeout_clock: Literal["cpu", "wall"] = "cpu"
    #: HTML larger than this (UTF-8 bytes) is dropped with "too_large" without extraction.
    max_html_bytes: int = Field(2_000_000, gt=0)
    #: Keep comment sections (trafilatura's include_comments, resiliparse's comments).
    include_comments: bool = False
    #: Extracted text shorter than this (characters) is dropped with "no_text".
    min_chars: int = Field(1, ge=0)
    #: Write the page title to `extract_title` (trafilatura: slower, runs its metadata extraction;
    #: resiliparse: the <title> of the parsed page, at no cost).
    title: bool = False
    #: How the time budget is enforced: "auto" = a timer signal in a main thread with trafilatura,
    #: a child process otherwise (always with resiliparse, whose native code a signal cannot stop).
    isolation: Literal["auto", "signal", "process"] = "auto"

    # ---- trafilatura only
    #: trafilatura's focus: favor_precision, favor_recall or neither.
    mode: Literal["balanced", "precision", "recall"] = "balanced"
    include_tables: bool = True
    #: trafilatura's fast mode: skip the readability/justext fallbacks (about 2x faster, less recall).
    fast: bool = False

    # ---- resiliparse only (extract_plain_text's options): its own defaults, but for alt texts and post
    # metadata (bylines, dates), which are not prose (off: +0.02 F1 against the extraction benchmark's gold)
    #: Keep only what resiliparse's heuristics call main content (False: all visible text).
    main_content: bool = True
    #: Keep line breaks of block elements, lists and <pre> (False: one line of text).
    preserve_formatting: bool = True
    list_bullets: bool = True
    alt_texts: bool = False
    #: Write link targets after the link text.
    links: bool = False
    form_fields: bool = False
    noscript: bool = False
    post_meta: bool = False
    #: CSS selectors of elements to leave out.
    skip_elements: list[str] | None = None

    @field_validator(*TRAFILATURA_ONLY, *RESILIPARSE_ONLY)
    @classmethod
    def _for_this_engine(cls, value: Any, info: ValidationInfo) -> Any:
        engine = info.data.get("engine")
        own = "trafilatura" if info.field_name in TRAFILATURA_ONLY else "resiliparse"
        if engine is not None and engine != own:
            raise ValueError(f"a parameter of engine {own}, not of engine {engine}")
        return value

    @field_validator("skip_elements")
    @classmethod
    def _selectors_parse(cls, value: list[str] | None) -> list[str] | None:
        if value:
            from resiliparse.extract.html2text import extract_plain_text
            try:
                extract_plain_text("<p>x</p>", skip_elements=value)
            except Exception as e:  # noqa: BLE001 - resiliparse's CSSParserException and kin
                raise ValueError(f"not a CSS selector list resiliparse can use: {e}") from None
        return value


@register
class Extract(Operator):
    """Main-text extraction (trafilatura or resiliparse): html -> text, with per-document time and size limits."""

    name = "extract"
    inputs = (HTML, TEXT)
    outputs = (TEXT, "extract_html_bytes")
    resources = Resources(cpus=1.0, memory_mb=1024)
    Params = ExtractParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._extractor: _Extractor | None = None
        self._child: _Child | None = None
        self._closed_cpu = 0.0

    def output_columns(self) -> tuple[str, ...]:
        return self.outputs + (("extract_title",) if self.params.title else ())

    def _opts(self) -> dict[str, Any]:
        p = self.params
        return {"engine": p.engine, "include_comments": p.include_comments, "title": p.title,
                "clock": p.timeout_clock, **{k: getattr(p, k) for k in TRAFILATURA_ONLY + RESILIPARSE_ONLY}}

    def setup(self) -> None:
        """Checks the engine is installed; it is imported when the first HTML comes (a WET or JSONL
        job never pays trafilatura's import, ~0.15 CPU s per worker)."""
        import importlib.util

        package = "resiliparse" if self.params.engine == "resiliparse" else "trafilatura"
        if importlib.util.find_spec(package) is None:
            raise ImportError(f"extract: engine {self.params.engine!r} needs the {package} package")

    def external_cpu_seconds(self) -> float:
        return self._closed_cpu + (self._child.cpu_seconds() if self._child is not None else 0.0)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_extractor"] = None
        state["_child"] = None
        state["_ready"] = False
        return state

    def close(self) -> None:
        if self._child is not None:
            self._child.close()
            self._closed_cpu += self._child.cpu_seconds()
            self._child = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def _use_signal(self) -> bool:
        iso = self.params.isolation
        main = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
        if iso == "signal" and not main:
            raise RuntimeError("extract: isolation=signal needs the main thread of a process")
        return iso == "signal" or (iso == "auto" and main and self.params.engine == "trafilatura")

    def _extract_many(self, items: list[tuple[int, str | bytes, str | None]], in_process: bool
                      ) -> dict[int, tuple[str, str | None, str | None]]:
        if not items:
            return {}
        if in_process:
            if self._extractor is None:
                self._extractor = _Extractor(self._opts())
            t = self.params.timeout_s
            with _alarm_handler(self.params.timeout_clock):
                return {i: self._extractor.timed(h, u, t) for i, h, u in items}
        if self._child is None:
            self._child = _Child(self._opts(), self.params.timeout_s)
        return self._child.run(items)

    def process(self, batch: pa.RecordBatch) -> Result:
        p = self.params
        n = batch.num_rows
        html_col = batch.column(HTML)
        text_col = batch.column(TEXT)
        nbytes = pc.binary_length(html_col)  # UTF-8 bytes; null where html is null
        has_html = np.asarray(pc.fill_null(pc.is_valid(html_col), False), dtype=bool)
        has_text = np.asarray(pc.fill_null(pc.is_valid(text_col), False), dtype=bool)
        size = np.asarray(pc.fill_null(nbytes, 0), dtype=np.int64)
        too_large = has_html & (size > p.max_html_bytes)
        todo = np.flatnonzero(has_html & ~too_large)

        keep = np.ones(n, dtype=bool)
        reasons = np.full(n, None, dtype=object)
        # neither html nor text: nothing to work with
        empty = ~has_html & ~has_text
        keep[empty] = False
        reasons[empty] = NO_TEXT
        keep[too_large] = False
        reasons[too_large] = TOO_LARGE

        text_out = text_col.cast(pa.string())  # rows without HTML (WET, JSONL): their text as it came
        titles: list[str | None] = [None] * n
        if len(todo):
            texts: list[str | None] = text_col.to_pylist()
            in_process = self._use_signal()
            htmls = html_col.take(pa.array(todo))
            # to the child, the UTF-8 bytes as Arrow holds them: no decoding here, nor encoding to pickle
            htmls = (htmls if in_process else htmls.cast(pa.binary())).to_pylist()
            urls = batch.column(URL).take(pa.array(todo)).to_pylist()
            results = self._extract_many([(int(i), h, u) for i, h, u in zip(todo, htmls, urls) if h.strip()],
                                         in_process)
            for i in todo:
                i = int(i)
                status, text, title = results.get(i, (NO_TEXT, None, None))
                texts[i] = text
                titles[i] = title
                if status == OK and (text is None or len(text) < max(p.min_chars, 1)):
                    status = NO_TEXT
                if status != OK:
                    keep[i] = False
                    reasons[i] = status
            text_out = pa.array(texts, type=pa.string())

        out = set_column(batch, TEXT, text_out)
        out = set_column(out, "extract_html_bytes", nbytes.cast(pa.int64()))
        if p.title:
            out = set_column(out, "extract_title", pa.array(titles, type=pa.string()))
        return Result(out, keep, reasons)
