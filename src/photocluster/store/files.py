"""Whole-buffer reads and writes at an offset, and folder fsync: the store's system calls."""

from __future__ import annotations

import errno
import os
from pathlib import Path


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


def replace_with(tmp: Path, path: Path, fd: int, fsync: bool = True) -> None:
    """Make the file behind ``fd`` (written at ``tmp``) the one at ``path``, atomically:
    fsync it, rename it over ``path``, fsync the folder."""
    if fsync:
        os.fsync(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)
