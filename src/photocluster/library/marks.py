"""A library's not-similar decisions: pairs the user says are not alike, kept apart."""

from __future__ import annotations

import time
from collections.abc import Sequence

from photocluster.errors import UnknownImage
from photocluster.ids import validate_user_id
from photocluster.library import decisions
from photocluster.library.parts import LibraryParts, among
from photocluster.library.results import DecisionsPage


class LibraryMarks(LibraryParts):
    def mark_not_similar(self, user_id: str, image_ids: Sequence[str]) -> tuple[int, int]:
        """Record that no two of these photos are alike (every pair among them); returns
        the pairs newly marked and the user's total. UnknownImage names any photo the user
        does not have embedded (a pending or failed upload is in no group to separate)."""
        pairs = decisions.pairs_among(image_ids)
        with self.store.transaction(user_id, self.graphs.index(user_id)) as tx:
            stored = among(tx.snapshot.ids, image_ids) if tx.snapshot is not None else set()
            unknown = sorted(set(image_ids) - stored)
            if unknown:
                raise UnknownImage(f"no image {', '.join(map(repr, unknown))}", tuple(unknown))
            return self.decisions.mark(user_id, pairs, time.time())

    def unmark_not_similar(self, user_id: str, image_ids: Sequence[str]) -> tuple[int, int]:
        """Undo :meth:`mark_not_similar` for every pair among these photos."""
        pairs = decisions.pairs_among(image_ids)
        if not self.decisions.path(user_id).exists():
            return 0, 0
        with self.store.transaction(user_id):
            return self.decisions.unmark(user_id, pairs)

    def not_similar(
        self, user_id: str, limit: int = 100, cursor: str | None = None
    ) -> DecisionsPage:
        """The user's not-similar pairs, newest first, a page at a time."""
        validate_user_id(user_id)
        current = self.decisions.read(user_id)
        window, next_cursor = decisions.page(current, limit, cursor)
        return DecisionsPage(window, len(current.not_similar), next_cursor)
