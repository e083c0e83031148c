"""An input file whose storage failures are told apart from damaged data."""
from __future__ import annotations

from engine.errors import StorageError


class GuardedFile:
    """An input file whose failed reads raise `StorageError` (with the original as its cause), so
    that a reader's own handling of damaged data never mistakes a dropped connection for it."""

    def __init__(self, f, path: str) -> None:
        self._f = f
        self._path = path

    def _guard(self, fn, *a):
        try:
            return fn(*a)
        except StorageError:
            raise
        except Exception as e:
            raise StorageError(f"{self._path}: {type(e).__name__}: {e}") from e

    def read(self, *a):
        return self._guard(self._f.read, *a)

    def readinto(self, *a):
        return self._guard(self._f.readinto, *a)

    def readline(self, *a):
        return self._guard(self._f.readline, *a)

    def __iter__(self):
        return iter(self.readline, b"")

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()
        return False
