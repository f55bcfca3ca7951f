"""A bulk import of precomputed vectors (``photocluster import-embeddings``), in bounded memory.

The vectors are read a batch at a time, twice: a first pass checks every one (nothing is
written when one is bad), the second writes them to the store a batch at a time, with
their records; the neighbour graph is built once, at the end, from the mapped file. What a
process holds is a batch, the ids, and the graph's work, never the whole library. An import
stopped midway keeps the batches it wrote (the graph is then stale: the next reader or
write rebuilds it); running it again adds the rest and changes nothing of what is there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from photocluster.library.library import Library
from photocluster.library.results import WriteResult
from photocluster.store.format import normalise_vectors

#: Photos written per transaction of an import.
BATCH = 2000

#: The vectors in order, a batch at a time (each call starts from the first).
Batches = Callable[[], Iterator[npt.NDArray[np.floating]]]


def import_embeddings(
    library: Library,
    user_id: str,
    model: str,
    image_ids: Sequence[str],
    batches: Batches,
    progress: bool = True,
) -> WriteResult:
    """Store every vector of ``batches`` under ``image_ids`` (same order), then build the
    user's graph; InvalidVector, LibraryFull and the store's refusals leave it as it was."""
    dim, first = None, 0
    for batch in batches():  # the whole file is checked before anything is written
        dim = normalise_vectors(batch, dim, first).shape[1]
        first += len(batch)
    if not image_ids:  # nothing to import: nothing changes, not even a lock file
        stored = library.stats(user_id).n_images if library.store.exists(user_id) else 0
        return WriteResult(n_images=stored)
    library.check_room_for(user_id, image_ids)
    totals = WriteResult()
    start = 0
    shown = None if progress else True  # None: on a terminal only
    with tqdm(total=len(image_ids), unit="photo", desc="import", disable=shown) as bar:
        for batch in batches():
            ids = image_ids[start : start + len(batch)]
            done = library.write(user_id, model, ids, batch, graph=False)
            totals = _sum(totals, done)
            start += len(batch)
            bar.update(len(batch))
    if start:
        library.reindex(user_id)
    return totals


def _sum(a: WriteResult, b: WriteResult) -> WriteResult:
    return WriteResult(
        added=a.added + b.added,
        replaced=a.replaced + b.replaced,
        unchanged=a.unchanged + b.unchanged,
        deleted=a.deleted + b.deleted,
        missing=a.missing + b.missing,
        stale=a.stale + b.stale,
        n_images=b.n_images,
    )
