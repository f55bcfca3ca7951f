"""Each user's copies: the pairs of photos the geometric check accepted (copies, and
pairs that show one scene), and the features it needs.

Ingest sends a photo's packed ORB features with its vector, for the picture and its mirror
image (:func:`photocluster.clustering.orb.encode`). Under the user's exclusive lock, the
writer checks the new photo against its ``CANDIDATES`` most similar photos with cosine at
least ``CANDIDATE_FLOOR``, and keeps the picture's own points in ``{user_id}.pcf/`` beside
the store (one file per photo, about 20 kB: ``kept``); the pairs it accepts join
``{user_id}.pcp`` (JSON, image ids by kind, rewritten whole and atomically; format 1 held
copies only). The graph raises them (:mod:`photocluster.clustering.graph`).
Copies are about image ids, like decisions: they outlive compaction and reindexing, and go
when either photo is deleted or replaced. A photo stored without features (ingest could not
compute them, or it predates the check) is grouped by its vector alone.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np

from photocluster.clustering.copies import CANDIDATE_FLOOR, COPY, SCENE, relation
from photocluster.clustering.graph import Pairs
from photocluster.clustering.orb import (
    Features,
    InvalidFeatures,
    Keypoints,
    decode,
    decode_kept,
    kept,
)
from photocluster.clustering.similarity import most_similar
from photocluster.errors import StoreCorrupt
from photocluster.ids import IdArray, positions
from photocluster.store import Store
from photocluster.store.documents import read_document, write_document
from photocluster.store.files import make_folder, write_file
from photocluster.store.vectors import Rows

log = logging.getLogger(__name__)

FORMAT = 2
_READABLE = (1, 2)  # format 1: copies only
#: The most similar photos each new photo is checked against (4-9 ms a pair: README,
#: Quality, the geometric check's cost). 32 cost 280 ms a photo in a library of a few
#: topics with many shots each, where every candidate is related; 16 kept all but one of
#: 1,132 and 990 related pairs of held-out seeds 3 and 4 (their largest groups hold 12).
CANDIDATES = 16

Pair = tuple[str, str]
T = TypeVar("T")


@dataclass(frozen=True)
class Verified:
    """A user's pairs (image ids, sorted) the check accepted, by what they are."""

    copies: frozenset[Pair] = frozenset()
    scenes: frozenset[Pair] = frozenset()

    def without(self, image_ids: set[str]) -> Verified:
        """The pairs with neither photo in ``image_ids``."""
        return Verified(
            frozenset(p for p in self.copies if not set(p) & image_ids),
            frozenset(p for p in self.scenes if not set(p) & image_ids),
        )

    def __or__(self, other: Verified) -> Verified:
        return Verified(self.copies | other.copies, self.scenes | other.scenes)


class VerifiedRows(NamedTuple):
    """A user's verified pairs as rows of the stored ids."""

    copies: Pairs
    scenes: Pairs


@dataclass
class UserCopies:
    """Every user's copies file and features folder."""

    store: Store

    def path(self, user_id: str) -> Path:
        return self.store.paths(user_id).copies

    def folder(self, user_id: str) -> Path:
        return self.store.paths(user_id).features

    def read(self, user_id: str) -> Verified:
        path = self.path(user_id)
        version, document = read_document(path, "copies", _READABLE)
        if not version:
            return Verified()
        try:
            return Verified(_pairs(document["copies"]), _pairs(document.get("scenes", [])))
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreCorrupt(f"{path}: not a copies file ({exc})") from exc

    def rows(self, user_id: str, ids: IdArray) -> VerifiedRows:
        """The user's pairs as rows of ``ids`` (pairs with a photo not there left out)."""
        found = self.read(user_id)
        return VerifiedRows(_rows(ids, found.copies), _rows(ids, found.scenes))

    # ------------------------------------------------------------ writes (lock held)

    def after_upsert(
        self,
        user_id: str,
        ids: IdArray,
        vectors: Rows,
        appended: int,
        features: Mapping[str, bytes | None],
    ) -> bool:
        """Keep the features of the new or replaced photos (the last ``appended`` rows),
        forget their old pairs, check them against their candidates. A photo stored without
        the features now given (a writer that died between the two: the message comes
        again, and the store has nothing to change) is checked now. Returns whether that
        changed the copies of such photos: then the graph is to be built again."""
        names = _Names(ids)
        first = len(ids) - appended
        late = self._unchecked(user_id, ids, features, first)
        rows = late + list(range(first, len(ids)))
        if not rows:
            return False
        checked = {names[row] for row in rows}
        current = self.read(user_id)
        kept = current.without(checked)
        found = self._check(user_id, names, vectors, rows, features)
        if kept | found != current:
            self._write(user_id, kept | found)
        # last: a writer that dies before this point leaves features unkept, and the
        # redelivered upload is checked again
        kept_any = self.folder(user_id).exists()  # else nothing to drop (an import's photos)
        for image_id in checked:
            if kept_any or features.get(image_id) is not None:
                self.keep(user_id, image_id, features.get(image_id))
        return bool(late) and kept | found != current

    def _unchecked(
        self, user_id: str, ids: IdArray, features: Mapping[str, bytes | None], first: int
    ) -> list[int]:
        """Rows before ``first`` given features other than those kept (none kept, or a
        replaced photo's)."""
        given = [image_id for image_id, data in features.items() if data is not None]
        at = positions(ids, given)
        return [
            int(row)
            for image_id, row in zip(given, at, strict=True)
            if 0 <= row < first and self.stored(user_id, image_id) != _kept(features[image_id])
        ]

    def forget(self, user_id: str, image_ids: Iterable[str]) -> None:
        """Drop the pairs and the features of deleted photos."""
        gone = set(image_ids)
        current = self.read(user_id)
        kept = current.without(gone)
        if kept != current:
            self._write(user_id, kept)
        for image_id in gone:
            self._feature_path(user_id, image_id).unlink(missing_ok=True)

    def _check(
        self,
        user_id: str,
        names: _Names,
        vectors: Rows,
        rows: list[int],
        features: Mapping[str, bytes | None],
    ) -> Verified:
        checking = np.zeros(len(names), dtype=bool)
        checking[rows] = True
        loaded: dict[int, Features | Keypoints | None] = {}
        found: dict[str, set[Pair]] = {COPY: set(), SCENE: set()}
        featured = [r for r in rows if self._features(user_id, names[r], features, loaded, r)]
        if not featured:  # no photo to check (an import): no pass over the others
            return Verified(frozenset(), frozenset())
        similarities = vectors.dot(vectors.take(np.array(featured, dtype=np.int64)))  # one pass
        for row, sims in zip(featured, similarities, strict=True):
            mine = loaded[row]
            assert isinstance(mine, Features)  # a checked photo's features are given whole
            later = checking.copy()
            later[: row + 1] = False  # a pair of two checked photos is checked once
            for other in most_similar(sims, row, CANDIDATE_FLOOR, CANDIDATES, later):
                theirs = self._features(user_id, names[other], features, loaded, int(other))
                kind = relation(mine, theirs) if theirs is not None else None
                if kind is not None:
                    a, b = sorted((names[row], names[other]))
                    found[kind].add((a, b))
        return Verified(frozenset(found[COPY]), frozenset(found[SCENE]))

    def _features(
        self,
        user_id: str,
        image_id: str,
        given: Mapping[str, bytes | None],
        loaded: dict[int, Features | Keypoints | None],
        row: int,
    ) -> Features | Keypoints | None:
        if row not in loaded:
            if image_id in given:
                loaded[row] = _decoded(image_id, given[image_id], decode)
            else:
                loaded[row] = _decoded(image_id, self.stored(user_id, image_id), decode_kept)
        return loaded[row]

    def stored(self, user_id: str, image_id: str) -> bytes | None:
        try:
            return self._feature_path(user_id, image_id).read_bytes()
        except FileNotFoundError:
            return None

    def keep(self, user_id: str, image_id: str, data: bytes | None) -> None:
        """Keep what a later check needs of one photo's packed features (None: drop them)."""
        path = self._feature_path(user_id, image_id)
        kept_data = _kept(data)
        if kept_data is None:  # a replaced photo's old features must not be checked
            path.unlink(missing_ok=True)
            return
        make_folder(path.parent)
        write_file(path, kept_data, fsync=self.store.fsync)

    def _feature_path(self, user_id: str, image_id: str) -> Path:
        name = hashlib.sha256(image_id.encode()).hexdigest()[:32]
        return self.folder(user_id) / f"{name}.orb"

    def _write(self, user_id: str, pairs: Verified) -> None:
        body = {
            "copies": sorted([a, b] for a, b in pairs.copies),
            "scenes": sorted([a, b] for a, b in pairs.scenes),
        }
        write_document(self.path(user_id), FORMAT, body, fsync=self.store.fsync)


class _Names:
    """The image id of a row, decoded when asked (a write names a few of 100,000 rows)."""

    def __init__(self, ids: IdArray) -> None:
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, row: int) -> str:
        return bytes(self.ids[row]).decode("ascii")


def _pairs(rows: list[list[str]]) -> frozenset[Pair]:
    return frozenset((str(a), str(b)) for a, b in rows)


def _rows(ids: IdArray, pairs: frozenset[Pair]) -> Pairs:
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    at = positions(ids, [name for pair in sorted(pairs) for name in pair]).reshape(-1, 2)
    at = at[(at >= 0).all(axis=1)]
    return at[:, 0], at[:, 1]


def _kept(data: bytes | None) -> bytes | None:
    """What is kept of packed features (None: nothing, or unreadable)."""
    if data is None:
        return None
    try:
        return kept(data)
    except InvalidFeatures:
        return None


def _decoded(image_id: str, data: bytes | None, read: Callable[[bytes], T]) -> T | None:
    if data is None:
        return None
    try:
        return read(data)
    except InvalidFeatures as exc:  # derived data: the photo is grouped by its vector
        log.warning("features of %s unreadable (%s); not checked", image_id, exc)
        return None
