"""Finding a job's input files: globs and folders expanded, anything that is not a readable file
skipped with a reason, and decant's own outputs never taken as input.

A bad entry never stops the job: symlink loops and dangling links, FIFOs (never opened: a read
would block forever), sockets, devices, unreadable and zero-byte files are returned as `skipped`
with why, for stats.json. A folder that holds a decant output (`_work/job.json`) or is this job's
output folder is left out whole, so `decant run -i DIR -o DIR/out2` does not read DIR/out.
"""
from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Iterable

import fsspec

from engine.io import unstrip

#: What marks a folder as a decant output (engine.plan.WorkLayout.job_marker, relative to OUT).
OUTPUT_MARKER = ("_work", "job.json")


@dataclasses.dataclass
class Inputs:
    files: list[str]
    #: path -> why it was not taken.
    skipped: dict[str, str]


def find_inputs(patterns: Iterable[str], exclude: Iterable[str] = ()) -> Inputs:
    """Sorted, de-duplicated input files (with protocol) of globs, folders and files; `exclude`
    names folders (this job's output) never read. FileNotFoundError when a pattern finds nothing."""
    files: set[str] = set()
    skipped: dict[str, str] = {}
    excluded = {_norm(e) for e in exclude if e}
    for pat in patterns:
        fs, _, paths = fsspec.get_fs_token_paths(pat)
        local = unstrip(fs, "/x") == "/x"
        found: list[str] = []
        for p in paths:
            if local:
                if os.path.lexists(p):  # a name that is not there matches nothing
                    _walk_local(p, found, skipped, excluded, set())
            else:
                _walk_remote(fs, p, found, skipped, excluded)
        if not found and not any(k.startswith(tuple(paths)) for k in skipped):
            raise FileNotFoundError(f"input {pat!r} matches no file")
        files.update(unstrip(fs, f) for f in found)
    return Inputs(sorted(files), dict(sorted(skipped.items())))


def _norm(path: str) -> str:
    return os.path.realpath(path) if "://" not in path or path.startswith("file://") else path.rstrip("/")


def _kind(mode: int) -> str | None:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else "not a regular file"


def _walk_local(path: str, found: list[str], skipped: dict[str, str], excluded: set[str], seen: set[str]) -> None:
    try:
        st = os.stat(path)  # follows links
    except OSError as e:
        is_link = os.path.islink(path)
        reason = ("symlink loop" if e.errno == 40 else "dangling symlink") if is_link else f"cannot stat: {e.strerror}"
        skipped[path] = reason
        return
    kind = _kind(st.st_mode)
    if kind:
        skipped[path] = f"{kind}, not a file: not read"
        return
    if stat.S_ISDIR(st.st_mode):
        real = os.path.realpath(path)
        if real in seen:
            skipped[path] = "symlink loop (folder already visited)"
            return
        if real in excluded:
            skipped[path] = "this job's output folder"
            return
        if os.path.isfile(os.path.join(path, *OUTPUT_MARKER)):
            skipped[path] = "a decant output folder (holds _work/job.json)"
            return
        seen = seen | {real}
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as e:
            skipped[path] = f"unreadable folder: {e.strerror}"
            return
        for entry in entries:
            if not entry.name.startswith("."):
                _walk_local(entry.path, found, skipped, excluded, seen)
        return
    if st.st_size == 0:
        skipped[path] = "empty file (0 bytes)"
    elif not os.access(path, os.R_OK):
        skipped[path] = "unreadable: permission denied"
    else:
        found.append(path)


def _walk_remote(fs, path: str, found: list[str], skipped: dict[str, str], excluded: set[str]) -> None:
    if not fs.isdir(path):
        if fs.exists(path):
            size = fs.info(path).get("size")
            (skipped.__setitem__(path, "empty file (0 bytes)") if size == 0 else found.append(path))
        return
    entries = fs.find(path, detail=True)
    roots = {p[: -len("/".join(OUTPUT_MARKER)) - 1] for p in entries if p.endswith("/" + "/".join(OUTPUT_MARKER))}
    roots |= {e for e in excluded if e.startswith(path.rstrip("/") + "/") or e == path.rstrip("/")}
    for root in sorted(roots):
        skipped[root] = "this job's output folder" if root in excluded else "a decant output folder (holds _work/job.json)"
    for p, info in sorted(entries.items()):
        rel = p[len(path.rstrip("/")) + 1:]
        if any(part.startswith(".") for part in rel.split("/")) or any(p.startswith(r + "/") for r in roots):
            continue
        if info.get("size") == 0:
            skipped[p] = "empty file (0 bytes)"
        else:
            found.append(p)
