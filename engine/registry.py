"""One registry for everything a job file names: operators, readers (input formats) and writers
(output formats).

Classes register themselves with `@register`; which table they go to is their `kind` ("operator",
"reader", "writer"). The engine never imports the packages that define them: the caller names
those packages (`discover(["operators"])`, the job's `plugins:`), and workers import the same
list before they build the job's graph.

A package may hold a module `registry_index` (INDEX_MODULE) saying which module registers each of
its operators (`OPERATORS`) and which modules to import whatever the job (`EAGER`: readers and
writers, which are looked through as a whole, e.g. to sniff an input's format). Its operators are
then imported when a job names them: a dedup job no longer imports the quality filters (~60-75 ms
of every plan). A name the index does not know imports the whole package, as without an index, so
an operator module nobody indexed still works; an unknown name still lists every known one.
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
INDEX_MODULE = "registry_index"
#: Operator name -> the module that registers it, from the indexes of the packages discovered.
_INDEXED: dict[str, str] = {}
#: Indexed packages not imported whole yet (a name their index lacks imports them).
_UNWALKED: list[str] = []


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
        index = _index_of(name) if hasattr(mod, "__path__") else None
        if index is not None:
            for module in index.EAGER:
                importlib.import_module(module)
            _INDEXED.update(index.OPERATORS)
            _UNWALKED.append(name)
        elif hasattr(mod, "__path__"):
            _walk(mod)
        _DISCOVERED.add(name)


def _index_of(package: str) -> Any:
    try:
        return importlib.import_module(f"{package}.{INDEX_MODULE}")
    except ModuleNotFoundError as e:
        if e.name != f"{package}.{INDEX_MODULE}":
            raise
        return None


def _load_operator(name: str) -> None:
    """Import the module the indexes name for `name`; not there: every indexed package whole."""
    if name in _INDEXED:
        importlib.import_module(_INDEXED[name])
    while name not in OPERATORS and _UNWALKED:
        _walk(importlib.import_module(_UNWALKED.pop(0)))


def _walk(package: Any) -> None:
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        mod = importlib.import_module(info.name)
        if info.ispkg:
            _walk(mod)


def lookup(kind: str, name: str) -> type:
    """The class registered under `name`; KeyError names the known ones."""
    table = _TABLES[kind]
    if kind == "operator" and name not in table:
        _load_operator(name)
    if name not in table:
        raise KeyError(f"unknown {kind} {name!r}; known: {', '.join(sorted(table)) or '(none registered)'}")
    return table[name]


def get_operator(name: str) -> type:
    return lookup("operator", name)


def get_reader(name: str) -> type:
    return lookup("reader", name)


def get_writer(name: str) -> type:
    return lookup("writer", name)
