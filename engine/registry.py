"""One registry for everything a job file names: operators, readers (input formats) and writers
(output formats).

Classes register themselves with `@register`; which table they go to is their `kind` ("operator",
"reader", "writer"). The engine never imports the packages that define them: the caller names
those packages (`discover(["operators"])`, the job's `plugins:`), and workers import the same
list before they build the job's graph.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from typing import Any

OPERATORS: dict[str, type] = {}
READERS: dict[str, type] = {}
WRITERS: dict[str, type] = {}
_TABLES = {"operator": OPERATORS, "reader": READERS, "writer": WRITERS}
_DISCOVERED: set[str] = set()


def register(cls):
    """Class decorator: make an operator, reader or writer available to job files by its name."""
    kind = getattr(cls, "kind", None)
    if kind not in _TABLES:
        raise TypeError(f"{cls.__name__}: only operators, readers and writers can be registered")
    name = getattr(cls, "name", "")
    if not name:
        raise ValueError(f"{cls.__name__} has no name")
    _TABLES[kind][name] = cls
    return cls


def discover(packages: Iterable[str]) -> None:
    """Import each package (or module) and, for packages, every module below it, so that their
    `@register` decorators run. Idempotent and cheap after the first call per package."""
    for name in packages:
        if name in _DISCOVERED:
            continue
        mod = importlib.import_module(name)
        if hasattr(mod, "__path__"):
            _walk(mod)
        _DISCOVERED.add(name)


def _walk(package: Any) -> None:
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        mod = importlib.import_module(info.name)
        if info.ispkg:
            _walk(mod)


def lookup(kind: str, name: str) -> type:
    """The class registered under `name`; KeyError names the known ones."""
    table = _TABLES[kind]
    if name not in table:
        raise KeyError(f"unknown {kind} {name!r}; known: {', '.join(sorted(table)) or '(none registered)'}")
    return table[name]


def get_operator(name: str) -> type:
    return lookup("operator", name)


def get_reader(name: str) -> type:
    return lookup("reader", name)


def get_writer(name: str) -> type:
    return lookup("writer", name)
