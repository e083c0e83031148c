"""extract: main-text extraction from the `html` column into `text` with trafilatura.

Rows with HTML are extracted; rows without HTML but with text (WET, JSONL, text/plain payloads)
pass through unchanged, so the same job runs on WARC and WET input.

Drop reasons: "too_large" (HTML over `max_html_bytes`, nothing attempted), "timeout" (the
per-document budget ran out), "extract_error" (trafilatura raised), "no_text" (nothing, or fewer
than `min_chars` characters, came out; also rows with neither HTML nor text).

Time budget. trafilatura is pure Python over lxml, so a pathological page is slow in Python code
and a signal can interrupt it. In the main thread of a process (the local executor's workers, Ray
sync actors) each document runs under an interval timer (ITIMER_PROF, CPU time, by default, so the
decision does not depend on machine load and reruns agree; ITIMER_REAL with timeout_clock=wall)
whose handler raises `_Timeout`, a BaseException so that trafilatura's own `except Exception`
blocks cannot swallow it. Off the main thread signals are unavailable, so the batch is sent to a
persistent child process (a fresh interpreter, so safe in threaded parents) that applies the same
timer per document and streams results back; the parent also holds a wall-clock deadline per
document (3 x timeout_s + 10 s) and kills and restarts the child if it stops answering (a stall
inside C code), marking that document "timeout". `isolation: process` forces the child in any
thread.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import unicodedata
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from engine.documents import TEXT, URL, set_column
from engine.operator import Operator, Params, Resources, Result, register
from operators.columns import HTML

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


class _Extractor:
    """Calls trafilatura for one document with the configured options; no time limit of its own."""

    def __init__(self, opts: dict[str, Any]) -> None:
        import trafilatura  # noqa: F401 - imported here so the parent of a child need not

        self.opts = opts
        # trafilatura logs a warning or an error for every page it discards; the engine records
        # those pages as rejects with a reason, so the log lines are noise in worker logs.
        for name in ("trafilatura", "htmldate", "justext", "courlan"):
            logging.getLogger(name).setLevel(logging.CRITICAL)

    def __call__(self, html: str, url: str | None) -> tuple[str | None, str | None]:
        import trafilatura

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

    def timed(self, html: str, url: str | None, timeout_s: float) -> tuple[str, str | None, str | None]:
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
    """The child process: extract lists of (index, html, url), answer one result per item."""
    from multiprocessing.connection import Connection

    rconn, wconn = Connection(rfd, writable=False), Connection(wfd, readable=False)
    ex = _Extractor(opts)
    wconn.send("ready")
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
                wconn.send((idx, status, text, title))


class _Child:
    """A persistent child process that extracts batches; restarted when it has to be killed.

    Started with subprocess (a fresh interpreter running `_child_main`), not multiprocessing: no
    fork of a threaded parent, and no re-import of the parent's __main__ (which spawn does, and
    which breaks under scripts and some worker entry points). Pipes carry pickled messages.
    """

    START_TIMEOUT_S = 120.0

    def __init__(self, opts: dict[str, Any], timeout_s: float) -> None:
        self.opts, self.timeout_s = opts, timeout_s
        self.proc: subprocess.Popen | None = None
        self.send_conn = self.recv_conn = None

    def _start(self) -> None:
        from multiprocessing.connection import Connection

        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
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
            ready = self.recv_conn.poll(self.START_TIMEOUT_S) and self.recv_conn.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self._kill()
            raise RuntimeError("extract: the child process did not start")

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.send_conn.close()
            self.recv_conn.close()
        self.proc = self.send_conn = self.recv_conn = None

    def close(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(Exception):
                self.send_conn.send(None)
                self.proc.wait(2.0)
        self._kill()

    def run(self, items: list[tuple[int, str, str | None]]) -> dict[int, tuple[str, str | None, str | None]]:
        out: dict[int, tuple[str, str | None, str | None]] = {}
        # The child enforces timeout_s itself; this deadline only catches a child that stopped
        # answering (stuck in C code, or dead).
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
                    if self.recv_conn.poll(hard_deadline):
                        ridx, status, text, title = self.recv_conn.recv()
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


class ExtractParams(Params):
    #: trafilatura's focus: favor_precision, favor_recall or neither.
    mode: Literal["balanced", "precision", "recall"] = "balanced"
    #: Per-document time budget; a page that takes longer is dropped with "timeout".
    timeout_s: float = Field(5.0, gt=0)
    #: What timeout_s measures: "cpu" = CPU time of the worker (ITIMER_PROF: the same page gets
    #: the same decision however loaded the machine is), "wall" = elapsed time (ITIMER_REAL).
    timeout_clock: Literal["cpu", "wall"] = "cpu"
    #: HTML larger than this (UTF-8 bytes) is dropped with "too_large" without extraction.
    max_html_bytes: int = Field(2_000_000, gt=0)
    include_tables: bool = True
    include_comments: bool = False
    #: Extracted text shorter than this (characters) is dropped with "no_text".
    min_chars: int = Field(1, ge=0)
    #: trafilatura's fast mode: skip the readability/justext fallbacks (about 2x faster, less recall).
    fast: bool = False
    #: Also extract metadata and write the page title to `extract_title` (slower: runs htmldate).
    title: bool = False
    #: How the time budget is enforced: "auto" = a timer signal in a main thread, a child process otherwise.
    isolation: Literal["auto", "signal", "process"] = "auto"


@register
class Extract(Operator):
    """trafilatura main-text extraction: html -> text, with per-document time and size limits."""

    name = "extract"
    inputs = (HTML, TEXT)
    outputs = (TEXT, "extract_html_bytes")
    resources = Resources(cpus=1.0, memory_mb=1024)
    Params = ExtractParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._extractor: _Extractor | None = None
        self._child: _Child | None = None

    def output_columns(self) -> tuple[str, ...]:
        return self.outputs + (("extract_title",) if self.params.title else ())

    def _opts(self) -> dict[str, Any]:
        p = self.params
        return {"mode": p.mode, "include_tables": p.include_tables, "include_comments": p.include_comments,
                "fast": p.fast, "title": p.title, "clock": p.timeout_clock}

    def setup(self) -> None:
        self._extractor = _Extractor(self._opts())

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_extractor"] = None
        state["_child"] = None
        state["_ready"] = False
        return state

    def close(self) -> None:
        if self._child is not None:
            self._child.close()
            self._child = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def _use_signal(self) -> bool:
        iso = self.params.isolation
        main = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
        if iso == "signal" and not main:
            raise RuntimeError("extract: isolation=signal needs the main thread of a process")
        return iso != "process" and main

    def _extract_many(self, items: list[tuple[int, str, str | None]]) -> dict[int, tuple[str, str | None, str | None]]:
        if not items:
            return {}
        if self._use_signal():
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

        texts: list[str | None] = text_col.to_pylist()
        titles: list[str | None] = [None] * n
        if len(todo):
            htmls = html_col.take(pa.array(todo)).to_pylist()
            urls = batch.column(URL).take(pa.array(todo)).to_pylist()
            results = self._extract_many([(int(i), h, u) for i, h, u in zip(todo, htmls, urls) if h.strip()])
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

        out = set_column(batch, TEXT, pa.array(texts, type=pa.string()))
        out = set_column(out, "extract_html_bytes", nbytes.cast(pa.int64()))
        if p.title:
            out = set_column(out, "extract_title", pa.array(titles, type=pa.string()))
        return Result(out, keep, reasons)
