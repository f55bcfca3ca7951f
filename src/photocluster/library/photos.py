"""A library's answers about its photos: pages of them with their status, counts, stats."""

from __future__ import annotations

import time

from photocluster.ids import validate_user_id
from photocluster.library import images
from photocluster.library.parts import LibraryParts
from photocluster.library.results import ImagesPage, Stats
from photocluster.store.format import HEADER_SIZE
from photocluster.store.records import Status


class LibraryPhotos(LibraryParts):
    def images(
        self,
        user_id: str,
        status: Status | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> ImagesPage:
        """A page of the user's images, newest first, with their status."""
        validate_user_id(user_id)
        return self.records.page(user_id, status, limit, cursor, time.time())

    def counts(self, user_id: str) -> dict[str, int]:
        """How many of the user's images are pending, ready and failed."""
        validate_user_id(user_id)
        return images.counts(self.records.listing(user_id, time.time()))

    def unfinished(self, user_id: str) -> dict[str, int]:
        """How many of the user's images are pending and failed (no listing is built)."""
        validate_user_id(user_id)
        return self.records.unfinished(user_id, time.time())

    def stats(self, user_id: str) -> Stats:
        """The user's counts and files, from the store's and the graph's headers (no
        vector or array is read); from the loaded user only while the graph is stale."""
        header = self.store.header(user_id)
        size = self.store.paths(user_id).data.stat().st_size
        n_records = header.committed
        if n_records is None:  # a version 1 file counts every complete record
            n_records = (size - HEADER_SIZE) // header.record_size
        graph = self.graphs.fresh_header(user_id)
        n_images = graph["n"] if graph is not None else self.store.read(user_id).n
        return Stats(
            user_id=user_id,
            model=header.model,
            dim=header.dim,
            dtype=header.dtype,
            n_images=n_images,
            n_records=n_records,
            n_dead=n_records - n_images,
            file_bytes=size,
            generation=header.generation,
            graph_fresh=graph is not None,
            graph_floor=graph["floor"] if graph else None,
            graph_edges=graph["sections"]["edge_u"]["count"] if graph else None,
            graph_exact_from=graph["exact_from"] if graph else None,
            tiers=self.tiers(header.model).to_dict(),
            runtime=self.calibrations.served_by(header.model),
        )
