r"""Crash-safe file output: write a temporary file in the target's folder, fsync it, rename it over the target.

A reader (or a later run) sees either the old complete file or the new complete file, never a truncated one,
even when the writer is killed with ``SIGKILL`` mid-way: ``os.replace`` is atomic on POSIX within one file
system, which is why the temporary file lives in the same folder. The folder is fsynced after the rename so
the new name survives a power loss too.

>>> import tempfile, pathlib
>>> folder = tempfile.mkdtemp()
>>> target = atomic_write_text(pathlib.Path(folder) / "a.txt", "hello\n")
>>> target.read_text()
'hello\n'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "check_writable_file", "prepare_folder"]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Replace ``path`` by ``data`` atomically (temporary file in the same folder, fsync, rename); return it."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(OSError):  # keep the permissions of the file being replaced
            os.chmod(tmp, os.stat(target).st_mode & 0o7777)
        if not target.exists():
            with contextlib.suppress(OSError):  # mkstemp makes 0600; a new file gets the usual umask mode
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename durable; not every file system allows it
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Replace ``path`` by the UTF-8 ``text`` atomically (see :func:`atomic_write_bytes`); return it."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def check_writable_file(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot take an atomically written file (``None`` when it can): an empty name, a folder,
    a missing or unwritable parent folder. Checked before a long computation starts, so that its output is
    not lost at the end."""
    text = os.fspath(path)
    if not text.strip():
        return "empty path"
    target = Path(text)
    if target.is_dir():
        return "is a directory; give a file name"
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.exists():
        return f"folder {str(folder)[:80]!r} does not exist"
    if not folder.is_dir():
        return f"{str(folder)[:80]!r} is not a folder"
    try:  # the real test (os.access says yes to root even on a read-only file system)
        fd, probe = tempfile.mkstemp(prefix=f".{target.name[:40]}.", suffix=".probe", dir=folder)
    except OSError as exc:
        return f"folder {str(folder)[:80]!r} is not writable ({exc.strerror})"
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return None


def prepare_folder(path: str | os.PathLike[str]) -> str | None:
    """Create the output folder ``path`` if missing and check that it takes files; why not (``None``: fine)."""
    text = os.fspath(path)
    if not text.strip():
        return "empty path; give a folder"
    folder = Path(text)
    if folder.exists() and not folder.is_dir():
        return "is a file; give a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the folder ({exc.strerror})"
    return check_writable_file(folder / "probe")
