"""The per-user embeddings file: one file per user, fixed-size records, POSIX-locked.

* :mod:`~photocluster.store.format`: the header and record layout, vector validation;
* :mod:`~photocluster.store.lock`: the per-user fcntl lock;
* :mod:`~photocluster.store.snapshot`: a load (one read) and what a reader sees;
* :mod:`~photocluster.store.transaction`: upsert and delete under the exclusive lock,
  crash repair;
* :mod:`~photocluster.store.write_plan`: what a write changes, worked out before it writes;
* :mod:`~photocluster.store.compaction`: the atomic rewrite without dead records;
* :class:`Store` (:mod:`~photocluster.store.store`): the one door the rest of the code uses.
"""

from photocluster.store.format import (
    HEADER_SIZE,
    STATE_DEAD,
    STATE_LIVE,
    Header,
    StoreDtype,
    normalise_vectors,
    record_dtype,
)
from photocluster.store.snapshot import Change, Snapshot
from photocluster.store.store import Store, UserPaths
from photocluster.store.transaction import Transaction

__all__ = [
    "HEADER_SIZE",
    "STATE_DEAD",
    "STATE_LIVE",
    "Change",
    "Header",
    "Snapshot",
    "Store",
    "StoreDtype",
    "Transaction",
    "UserPaths",
    "normalise_vectors",
    "record_dtype",
]
