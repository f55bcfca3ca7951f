"""Each user's copies: the pairs of photos the geometric check accepted (copies, and
pairs that show one scene), and the features it needs.

Ingest sends a photo's packed ORB features with its vector
(:func:`photocluster.clustering.copies.encode`). Under the user's exclusive lock, the
writer keeps them in ``{user_id}.pcf/`` beside the store (one file per photo, about 40 kB)
and checks the new photo against its ``CANDIDATES`` most similar photos with cosine at
least ``CANDIDATE_FLOOR``; the pairs it accepts join ``{user_id}.pcp`` (JSON, image ids by
kind, rewritten whole and atomically; format 1 held copies only). The graph raises them
(:mod:`photocluster.clustering.graph`).
Copies are about image ids, like decisions: they outlive compaction and reindexing, and go
when either photo is deleted or replaced. A photo stored without features (ingest could not
compute them, or it predates the check) is grouped by its vector alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from photocluster.clustering.copies import (
    CANDIDATE_FLOOR,
    COPY,
    SCENE,
    Features,
    InvalidFeatures,
    decode,
    relation,
)
from photocluster.clustering.graph import Pairs
from photocluster.errors import StoreCorrupt
from photocluster.ids import IdArray, positions
from photocluster.store import Store
from photocluster.store.files import write_file
from photocluster.store.vectors import Rows

log = logging.getLogger(__name__)

FORMAT = 2
_READABLE = (1, 2)  # format 1: copies only
#: The most similar photos each new photo is checked against (up to about 13 ms a pair:
#: README, Quality, the geometric check's cost).
CANDIDATES = 32

Pair = tuple[str, str]


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
        try:
            document = json.loads(path.read_bytes())
            if document.get("format") not in _READABLE:
                raise ValueError(f"format {document.get('format')!r}")
            return Verified(_pairs(document["copies"]), _pairs(document.get("scenes", [])))
        except FileNotFoundError:
            return Verified()
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
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
            if 0 <= row < first and self.stored(user_id, image_id) != features[image_id]
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
        loaded: dict[int, Features | None] = {}
        found: dict[str, set[Pair]] = {COPY: set(), SCENE: set()}
        featured = [r for r in rows if self._features(user_id, names[r], features, loaded, r)]
        if not featured:  # no photo to check (an import): no pass over the others
            return Verified(frozenset(), frozenset())
        similarities = vectors.dot(vectors.take(np.array(featured, dtype=np.int64)))  # one pass
        for row, sims in zip(featured, similarities, strict=True):
            mine = loaded[row]
            assert mine is not None
            later = checking.copy()
            later[: row + 1] = False  # a pair of two checked photos is checked once
            for other in candidates(sims, row, later):
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
        loaded: dict[int, Features | None],
        row: int,
    ) -> Features | None:
        if row not in loaded:
            data = given.get(image_id) if image_id in given else self.stored(user_id, image_id)
            loaded[row] = _decoded(image_id, data)
        return loaded[row]

    def stored(self, user_id: str, image_id: str) -> bytes | None:
        try:
            return self._feature_path(user_id, image_id).read_bytes()
        except FileNotFoundError:
            return None

    def keep(self, user_id: str, image_id: str, data: bytes | None) -> None:
        """Keep (None: drop) one photo's packed features."""
        path = self._feature_path(user_id, image_id)
        if data is None:  # a replaced photo's old features must not be checked
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file(path, data, fsync=self.store.fsync)

    def _feature_path(self, user_id: str, image_id: str) -> Path:
        name = hashlib.sha256(image_id.encode()).hexdigest()[:32]
        return self.folder(user_id) / f"{name}.orb"

    def _write(self, user_id: str, pairs: Verified) -> None:
        document = {
            "format": FORMAT,
            "copies": sorted([a, b] for a, b in pairs.copies),
            "scenes": sorted([a, b] for a, b in pairs.scenes),
        }
        data = json.dumps(document, separators=(",", ":"))
        write_file(self.path(user_id), data.encode(), fsync=self.store.fsync)


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


def candidates(
    sims: npt.NDArray[np.float32],
    row: int,
    skip: npt.NDArray[np.bool_] | None = None,
    limit: int = CANDIDATES,
) -> npt.NDArray[np.int64]:
    """The other rows most similar to ``row`` (``sims``: every row's cosine with it; cosine
    >= the floor, not in ``skip``), at most ``limit``, most similar first."""
    eligible = sims >= CANDIDATE_FLOOR
    eligible[row] = False
    if skip is not None:
        eligible &= ~skip
    found = np.flatnonzero(eligible)
    return found[np.argsort(-sims[found], kind="stable")[:limit]].astype(np.int64)


def _decoded(image_id: str, data: bytes | None) -> Features | None:
    if data is None:
        return None
    try:
        return decode(data)
    except InvalidFeatures as exc:  # derived data: the photo is grouped by its vector
        log.warning("features of %s unreadable (%s); not checked", image_id, exc)
        return None
