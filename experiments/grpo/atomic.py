"""Atomic file writes: a temporary file with a unique name in the target's folder, fsync, then ``os.replace``.

Local stand-in for ``gradgap.proofs_check.atomic.atomic_write_text`` (same name and signature); the integrator
may point the imports there once both are merged. A reader never sees a half-written file, a ``kill -9`` leaves
the previous version (or nothing) in place, and two writers (processes or threads) never share a temporary name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_text"]


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; the temporary name carries the pid and a random part."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
