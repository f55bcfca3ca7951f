"""Compaction: rewrite a user's file with its live records only, atomically.

The live records go to a temporary file beside the user's file, which is fsynced and
renamed over it (then the folder is fsynced): a reader sees the old file or the new one,
never a mix. Record order is kept, so images stay in the order they were first stored.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from photocluster.store.files import FILE_MODE, replace_with, temp_path, write_all
from photocluster.store.format import HEADER_SIZE, live_records
from photocluster.store.snapshot import Snapshot
from photocluster.store.vectors import BLOCK_RECORDS, MappedRows


def needs_compaction(snapshot: Snapshot, ratio: float, min_dead: int) -> bool:
    """True once at least ``min_dead`` records, and more than ``ratio`` of all, are dead."""
    dead = snapshot.n_dead
    return dead >= min_dead and dead > ratio * snapshot.n_records


def write_compacted(snapshot: Snapshot, path: Path) -> tuple[int, Snapshot]:
    """Replace ``path`` with the live records of ``snapshot``; returns an open descriptor
    of the new file and the snapshot that describes it (a new generation and epoch)."""
    header = replace(
        snapshot.header,
        generation=snapshot.generation + 1,
        epoch=snapshot.header.epoch + 1,
        committed=snapshot.n,
    )
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        write_all(fd, header.encode(), 0)
        offset = HEADER_SIZE
        for start in range(0, snapshot.n, BLOCK_RECORDS):  # memory: one block, not the user
            block = np.arange(start, min(start + BLOCK_RECORDS, snapshot.n))
            records = live_records(
                snapshot.ids[block], snapshot.rows.take(block), header.dim, header.dtype
            )
            write_all(fd, records, offset)
            offset += len(records)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    replace_with(tmp, path, fd, fsync=False)  # fsynced above, before the rename
    stat = os.fstat(fd)
    positions = np.arange(snapshot.n, dtype=np.int64)
    compacted = replace(
        snapshot,
        header=header,
        rows=MappedRows.of(fd, header, snapshot.n, positions),
        positions=positions,
        n_records=snapshot.n,
        file_size=stat.st_size,
        inode=stat.st_ino,
    )
    return fd, compacted
