"""What a write changes, worked out in memory from the snapshot before a byte is written:
an upsert's checked input and its plan (records to append, rows they supersede), the
snapshot once they are appended, the rows a delete keeps, and the one rule for a library's
size (:func:`check_room`). :mod:`photocluster.store.transaction` does the writing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from photocluster.errors import InvalidVector, LibraryFull, ModelMismatch
from photocluster.ids import IdArray, encode_ids
from photocluster.store.format import (
    MODEL_ID_MAX,
    NUMPY_DTYPES,
    UNCHANGED_ATOL,
    FloatArray,
    normalise_vectors,
)
from photocluster.store.snapshot import Change, PositionArray, Snapshot
from photocluster.store.vectors import ArrayRows, MappedRows, Rows


@dataclass(frozen=True)
class UpsertPlan:
    """What an upsert appends, and which rows of the snapshot those records supersede."""

    change: Change
    ids: IdArray
    vectors: FloatArray  # float32, already rounded to the stored dtype
    replaced_rows: PositionArray


def validated(
    snap: Snapshot | None, user_id: str, model: str, ids: Sequence[str], vectors: npt.ArrayLike
) -> tuple[IdArray, FloatArray]:
    """Checked ids and unit vectors, the last occurrence of a repeated id winning."""
    if not model or len(model.encode("utf-8")) > MODEL_ID_MAX:
        raise ModelMismatch(f"model id must be 1..{MODEL_ID_MAX} bytes")
    encoded = encode_ids(ids)
    vecs = normalise_vectors(vectors, snap.dim if snap is not None else None)
    if len(encoded) != len(vecs):
        raise InvalidVector(f"{len(encoded)} ids but {len(vecs)} embeddings")
    if len(encoded) and snap is not None and snap.model != model:
        raise ModelMismatch(
            f"user {user_id!r} holds embeddings of model {snap.model!r}; "
            f"refusing vectors of {model!r}"
        )
    _, last = np.unique(encoded[::-1], return_index=True)
    keep = np.sort(len(encoded) - 1 - last)
    return encoded[keep], vecs[keep]


def check_room(user_id: str, n: int, added: int, max_rows: int | None) -> None:
    """LibraryFull when ``added`` new photos would take a user holding ``n`` past
    ``max_rows`` (the one rule: the writer, the import and the upload route ask it)."""
    if max_rows is not None and added and n + added > max_rows:
        raise LibraryFull(
            f"user {user_id!r} has {n} photos; {added} more would pass the largest library "
            f"this deployment holds ({max_rows} photos)"
        )


def plan_upsert(snap: Snapshot, ids: IdArray, vectors: FloatArray) -> UpsertPlan:
    """New ids are appended, changed ones appended and their old rows superseded; a vector
    equal to the stored one (a duplicate delivery) changes nothing."""
    stored = vectors.astype(NUMPY_DTYPES[snap.header.dtype]).astype(np.float32)
    existing = positions_of(snap.ids, ids)  # -1 where new
    is_known = existing >= 0
    same = np.zeros(len(ids), dtype=bool)
    if is_known.any():
        diff = np.abs(snap.rows.take(existing[is_known]) - stored[is_known]).max(axis=1)
        same[is_known] = diff <= UNCHANGED_ATOL[snap.header.dtype]
    write = ~same
    replaced_rows = existing[is_known & write]
    kept = np.ones(snap.n, dtype=bool)
    kept[replaced_rows] = False
    change = Change(
        kept=kept,
        appended=int(write.sum()),
        added=int((~is_known).sum()),
        replaced=len(replaced_rows),
        unchanged=int(same.sum()),
    )
    return UpsertPlan(change, ids[write], stored[write], replaced_rows)


def after_append(snap: Snapshot, plan: UpsertPlan, file_size: int, fd: int) -> Snapshot:
    """The snapshot once the plan's records are appended: the file behind ``fd`` mapped
    again (a writer never holds the user's vectors in memory, however it started)."""
    k = len(plan.ids)
    kept = plan.change.kept
    ids = np.concatenate([snap.ids[kept], plan.ids])
    positions = np.concatenate(
        [snap.positions[kept], np.arange(snap.n_records, snap.n_records + k)]
    )
    return replace(
        snap,
        ids=ids,
        rows=MappedRows.of(fd, snap.header, snap.n_records + k, positions),
        positions=positions,
        n_records=snap.n_records + k,
        file_size=file_size,
    )


def kept_rows(rows: Rows, kept: npt.NDArray[np.bool_]) -> Rows:
    """The rows left once those not ``kept`` are gone (a mapped file's stay where they are)."""
    if isinstance(rows, MappedRows):
        return replace(rows, positions=rows.positions[kept])
    return ArrayRows(rows.take(np.flatnonzero(kept)))


def positions_of(haystack: IdArray, needles: IdArray) -> npt.NDArray[np.int64]:
    """Row of each needle in ``haystack`` (unique ids), or -1; vectorised via sorting."""
    if len(haystack) == 0 or len(needles) == 0:
        return np.full(len(needles), -1, dtype=np.int64)
    order = np.argsort(haystack, kind="stable")
    sorted_ids = haystack[order]
    slots = np.searchsorted(sorted_ids, needles)
    slots = np.minimum(slots, len(sorted_ids) - 1)
    found = sorted_ids[slots] == needles
    return np.where(found, order[slots], -1).astype(np.int64)
