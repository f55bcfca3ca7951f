"""The per-user lock file: an fcntl lock on the whole file, shared or exclusive.

Writers hold it exclusive for a whole read-modify-write; readers hold it shared while they
read. The lock file is never replaced, so compaction's rename cannot strand a waiting
writer on an unlinked inode.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from photocluster.store.files import FILE_MODE

_OFD = hasattr(fcntl, "F_OFD_SETLKW")


class FileLock:
    """An fcntl lock on a whole file: shared or exclusive.

    Uses open-file-description locks where the kernel has them (Linux), so that threads of
    one process exclude each other and closing another descriptor of the same file does not
    drop the lock; falls back to POSIX ``lockf`` plus an in-process lock elsewhere.
    """

    _process_locks: ClassVar[dict[str, threading.RLock]] = {}
    _guard = threading.Lock()

    def __init__(self, path: Path, exclusive: bool) -> None:
        self.path = path
        self.exclusive = exclusive
        self.fd = -1
        self._thread_lock: threading.RLock | None = None

    def __enter__(self) -> FileLock:
        flags = os.O_RDWR | os.O_CREAT if self.exclusive else os.O_RDONLY
        self.fd = os.open(self.path, flags | os.O_CLOEXEC, FILE_MODE)
        try:
            if _OFD:
                lock_type = fcntl.F_WRLCK if self.exclusive else fcntl.F_RDLCK
                # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks).
                request = struct.pack("@hhqqi4x", lock_type, os.SEEK_SET, 0, 0, 0)
                _retry_eintr(lambda: fcntl.fcntl(self.fd, fcntl.F_OFD_SETLKW, request))
            else:  # pragma: no cover - non-Linux fallback
                self._lock_posix()
        except BaseException:
            os.close(self.fd)
            raise
        return self

    def _lock_posix(self) -> None:  # pragma: no cover - non-Linux fallback
        with self._guard:
            self._thread_lock = self._process_locks.setdefault(str(self.path), threading.RLock())
        self._thread_lock.acquire()
        mode = fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH
        _retry_eintr(lambda: fcntl.lockf(self.fd, mode))

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing the description releases the lock
        if self._thread_lock is not None:  # pragma: no cover - non-Linux fallback
            self._thread_lock.release()


def _retry_eintr(call: Callable[[], object]) -> None:
    while True:
        try:
            call()
            return
        except InterruptedError:
            continue
