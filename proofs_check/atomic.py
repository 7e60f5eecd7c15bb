r"""Crash-safe file output: write a temporary file in the target's folder, fsync it, rename it over the target.

A reader (or a later run) sees either the old complete file or the new complete file, never a truncated one,
even when the writer is killed with ``SIGKILL`` mid-way: ``os.replace`` is atomic on POSIX within one file
system, which is why the temporary file lives in the same folder. The folder is fsynced after the rename so
the new name survives a power loss too.

A writer killed before its rename leaves its temporary file, ``.NAME.PID.XXXXXXXX.tmp`` (hidden, named after the
target and the writer's process id). The next writer of the same target removes every such file whose process
is gone (:func:`remove_dead_leftovers`); a file of a live process (or of a process id this machine does not
know as dead, e.g. on a folder shared between machines, where ids may be reused) is left alone.

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

__all__ = ["atomic_write_bytes", "atomic_write_text", "check_folder", "check_writable_file", "prepare_folder",
           "remove_dead_leftovers"]


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (one owned by another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists
        return True
    return True


def _prefix(name: str) -> str:
    """The hidden prefix of this process's temporary files for a target called ``name``."""
    return f".{name}.{os.getpid()}."


def remove_dead_leftovers(folder: str | os.PathLike[str], name: str, suffix: str = ".tmp") -> list[str]:
    """Remove the temporary files ``.NAME.PID.XXXX<suffix>`` in ``folder`` whose writer process ``PID`` is gone
    (killed before its rename); return their names. Files of live processes, of this process and names that do
    not follow the pattern are kept."""
    removed: list[str] = []
    head = f".{name}."
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(head) and entry.name.endswith(suffix)):
            continue
        pid_text, dot, rest = entry.name[len(head): -len(suffix)].partition(".")
        if not (dot and rest and pid_text.isdigit() and "." not in rest) or len(pid_text) > 10:
            continue
        pid = int(pid_text)
        if pid == os.getpid() or _alive(pid):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(entry.name)
    return removed


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Replace ``path`` by ``data`` atomically (temporary file in the same folder, fsync, rename); return it."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    remove_dead_leftovers(folder, target.name)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(target.name), suffix=".tmp", dir=folder)
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
        remove_dead_leftovers(folder, target.name[:40], ".probe")
        fd, probe = tempfile.mkstemp(prefix=_prefix(target.name[:40]), suffix=".probe", dir=folder)
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


def check_folder(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot become an output folder (``None`` when it can), creating nothing: an empty name, a
    file, or a missing folder whose nearest existing ancestor is not a writable folder."""
    text = os.fspath(path)
    if not text.strip():
        return "empty path; give a folder"
    folder = Path(text)
    if folder.exists():
        return "is a file; give a folder" if not folder.is_dir() else check_writable_file(folder / "probe")
    ancestor = folder.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{str(ancestor)[:80]!r} is a file, not a folder"
    return check_writable_file(ancestor / "probe")
