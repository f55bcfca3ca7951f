"""Whole-buffer reads and writes at an offset, folder fsync, file versions: the store's
system calls."""

from __future__ import annotations

import errno
import logging
import os
import uuid
from pathlib import Path

log = logging.getLogger(__name__)


#: Who may read a user's files and folders: the service's own user alone (every function
#: reaches EFS as one POSIX user through its access point).
FILE_MODE, FOLDER_MODE = 0o600, 0o700


def make_folder(folder: Path) -> None:
    """``folder`` and its missing parents, for the service's user alone."""
    for parent in reversed([folder, *folder.parents]):
        if not parent.exists():
            try:
                parent.mkdir(mode=FOLDER_MODE)
            except FileExistsError:  # made meanwhile by another writer
                continue


def temp_path(path: Path) -> Path:
    """Where the next version of ``path`` is written before it replaces it. One name, not
    one per process: only the holder of the user's exclusive lock writes it, and the next
    holder removes what a writer that died left there (remove_leftovers)."""
    return path.with_name(f".{path.name}.tmp")


FileVersion = tuple[int, int, int]


def version_of(path: Path) -> FileVersion | None:
    """What changes whenever ``path`` is replaced or rewritten (inode, mtime, size), for
    caches of parsed files; None when there is no such file."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def remove_leftovers(*paths: Path) -> None:
    """Delete what writers that died left at these files' temporary paths (call with the
    user's exclusive lock held): such a file is never read."""
    for path in paths:
        try:
            temp_path(path).unlink()
        except FileNotFoundError:
            continue
        log.warning("removed %s, left by a writer that died", temp_path(path))


def read_exact(fd: int, size: int, offset: int) -> bytes:
    """Up to ``size`` bytes from ``offset`` (fewer only at the end of the file)."""
    chunks = []
    while size > 0:
        chunk = os.pread(fd, min(size, 1 << 30), offset)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def write_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """All of ``data`` at ``offset`` (pwrite may write less than asked)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:  # pragma: no cover - platforms without directory fds
        if exc.errno in (errno.EACCES, errno.EISDIR):
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically: written at its temporary path, then
    renamed over it (see :func:`replace_with`)."""
    _write_then_replace(temp_path(path), path, data, fsync, os.O_TRUNC)


def replace_with(tmp: Path, path: Path, fd: int, fsync: bool = True) -> None:
    """Make the file behind ``fd`` (written at ``tmp``) the one at ``path``, atomically:
    fsync it, rename it over ``path``, fsync the folder."""
    if fsync:
        os.fsync(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_file_unlocked(path: Path, data: bytes, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically where no lock keeps writers apart (a
    model's tier file, saved by every writer of every user): each writes its own temporary
    file, and the last rename wins."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        _write_then_replace(tmp, path, data, fsync, os.O_EXCL)
    finally:
        tmp.unlink(missing_ok=True)


def _write_then_replace(tmp: Path, path: Path, data: bytes, fsync: bool, mode: int) -> None:
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | mode | os.O_CLOEXEC, FILE_MODE)
    try:
        write_all(fd, data, 0)
        replace_with(tmp, path, fd, fsync=fsync)
    finally:
        os.close(fd)
