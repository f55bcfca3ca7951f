"""The parts every operation of a user's library works on, and the lookups they share."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

from photocluster.calibrations import StoredCalibrations, TierDefaults
from photocluster.clustering.graph import NeighbourGraph
from photocluster.config import Settings
from photocluster.errors import UnknownImage
from photocluster.ids import IdArray, positions, validate_image_id
from photocluster.library.copies import UserCopies
from photocluster.library.decisions import UserDecisions
from photocluster.library.graphs import UserGraphs
from photocluster.library.images import UserImages
from photocluster.library.tickets import TicketRate, UploadTickets
from photocluster.store import Store, Transaction
from photocluster.store.catalog import CatalogFiles
from photocluster.store.records import ImageRecord
from photocluster.store.vectors import MappedVectors


@dataclass
class LibraryParts:
    """What every part of a :class:`~photocluster.library.Library` works on: the store, the
    graphs, the records, the decisions, the copies and the calibrations beside it."""

    store: Store
    settings: Settings
    graphs: UserGraphs
    records: UserImages
    decisions: UserDecisions
    calibrations: StoredCalibrations
    copies: UserCopies
    tickets: UploadTickets

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        store = Store(
            root=settings.store_root,
            dtype=settings.store_dtype,
            fsync=settings.store_fsync,
            compact_ratio=settings.compact_ratio,
            compact_min_dead=settings.compact_min_dead,
            cache_bytes=settings.cache_mb * 2**20,
        )
        catalogs = CatalogFiles(fsync=settings.store_fsync, memory=store.memory)
        calibrations = StoredCalibrations(settings.store_root, fsync=settings.store_fsync)
        copies = UserCopies(store)
        graphs = UserGraphs(store, settings, calibrations, copies)
        return cls(
            store,
            settings,
            graphs,
            UserImages(store, catalogs, graphs.stored_ids),
            UserDecisions(store),
            calibrations,
            copies,
            UploadTickets(
                store,
                TicketRate(settings.upload_tickets_per_minute, settings.upload_ticket_burst),
                fsync=settings.store_fsync,
            ),
        )

    def version(self, user_id: str, records: bool = True) -> tuple[object, ...]:
        """What changes whenever any answer about the user may: the store's version, the
        decisions' and the calibrations' (a header read, two stats), and with ``records``
        the images' records' (their file parsed once per process: answers about groups and
        neighbours leave it out, it is the largest of the user's small files)."""
        parts: tuple[object, ...] = (
            self.store.version(user_id),
            self.decisions.read(user_id).version,
            self.calibrations.version(),
        )
        return (*parts, self.records.version(user_id, time.time())) if records else parts

    # ------------------------------------------------------------------ reads

    def tiers(self, model: str) -> TierDefaults:
        """The tiers of ``model`` when a request names none, and where they come from
        (``.asked(request)``: a request's tiers)."""
        return self.graphs.tiers(model)

    def image(self, user_id: str, image_id: str) -> ImageRecord:
        """One image's record (UnknownImage when none is shown)."""
        validate_image_id(image_id)
        now = time.time()
        record = self.records.latest(user_id, [image_id]).get(image_id)
        if record is not None and record.visible(now):
            return record
        stored = record is None and self.store.exists(user_id)
        if stored and image_id.encode("ascii") in set(self.graphs.stored_ids(user_id).tolist()):
            return ImageRecord(image_id, "ready")
        raise UnknownImage(f"no image {image_id!r}")

    def n_images(self, user_id: str) -> int:
        """How many photos the user has stored: from the graph's header (no array read),
        from the loaded user while the graph is stale."""
        graph = self.graphs.fresh_header(user_id)
        return int(graph["n"]) if graph is not None else self.store.read(user_id).n


def positions_hold(graph: NeighbourGraph, mapped: MappedVectors) -> bool:
    """Whether the graph's rows are at its positions in this mapped file: it is the file
    they were recorded for (records never move inside one file; a compaction makes a new one)."""
    return (
        len(graph.positions) == graph.n
        and mapped.inode == graph.inode
        and (graph.n == 0 or int(graph.positions.max()) < mapped.n_records)
    )


def among(ids: IdArray, image_ids: Sequence[str]) -> set[str]:
    """Which of ``image_ids`` are in ``ids`` (no decoding of every id)."""
    wanted = list(dict.fromkeys(image_ids))
    if len(wanted) > _FEW:
        at = positions(ids, wanted).tolist()
        return {i for i, row in zip(wanted, at, strict=True) if row >= 0}
    return {i for i in wanted if bool((ids == i.encode("ascii")).any())}


#: Up to this many ids are looked up one pass each; more, through one sort of all ids.
_FEW = 8


def stored_ids(tx: Transaction) -> IdArray | None:
    """The ids stored when the transaction began (None: nothing stored yet)."""
    return tx.snapshot.ids if tx.snapshot is not None else None
