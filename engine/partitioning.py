"""Folder names for partition values: bounded, collision-free, reversible (Hive style).

`documents/language=en/bucket=head/` is how Hive, Spark and `pyarrow.dataset` lay out partitions.
A value becomes a folder name by percent-encoding every byte outside [A-Za-z0-9_-] (so `a/b`,
`a_b`, `..` and `~` can never meet or escape), null becomes Hive's default partition name, and an
encoded value longer than MAX_NAME bytes is cut and given a hash of the whole value
(`<prefix>~<sha1 16 hex>`: `~` never occurs in an encoded value, so a cut name cannot equal an
uncut one). The exact value is always kept inside the files.
"""
from __future__ import annotations

import hashlib
from urllib.parse import unquote

NULL_NAME = "__HIVE_DEFAULT_PARTITION__"
#: The empty string ('' would give `col=`); encoding never writes `%` before a non-hex letter.
EMPTY_NAME = "%empty"
#: Longest encoded value kept whole (file systems allow 255 bytes per name; room for `col=`).
MAX_NAME = 96
_KEEP = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _encode(text: str, keep: frozenset = _KEEP) -> str:
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in text.encode("utf-8", "surrogatepass"))


def folder_value(value) -> str:
    """The folder-name form of a partition value."""
    if value is None:
        return NULL_NAME
    text = value if isinstance(value, str) else str(value)
    enc = _encode(text)
    if enc == NULL_NAME:  # a real string equal to the null marker must not read back as null
        enc = _encode(text, _KEEP - {ord("_")})
    if not enc:
        return EMPTY_NAME
    if len(enc) <= MAX_NAME:
        return enc
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{enc[:MAX_NAME - 17]}~{digest}"


def value_of(folder: str) -> str | None:
    """The value a folder name stands for; None for null. A cut name gives only its prefix back:
    its exact value is in the files."""
    if folder == NULL_NAME:
        return None
    if folder == EMPTY_NAME:
        return ""
    return unquote(folder.split("~", 1)[0])


def partition_path(columns: list[str], values: tuple) -> str:
    """`col1=v1/col2=v2` for one combination of values."""
    return "/".join(f"{c}={folder_value(v)}" for c, v in zip(columns, values))
