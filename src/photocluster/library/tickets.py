"""How fast a user may ask upload tickets: a token bucket kept beside the user's files.

The allowance lives in the store (``.pct``, read and replaced under the user's lock), not
in one process's memory, so every API function instance draws on the same bucket: a user
gets ``burst`` tickets at once and ``per_minute`` a minute on average, whichever instance
answers. A ticket refused costs nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from photocluster.errors import StoreCorrupt, UploadsThrottled
from photocluster.store import Store
from photocluster.store.documents import read_document, write_document

_KIND, _FORMAT = "upload tickets", 1


@dataclass(frozen=True)
class TicketRate:
    """``per_minute`` tickets a minute on average, up to ``burst`` at once."""

    per_minute: int
    burst: int

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0


@dataclass(frozen=True)
class Allowance:
    """Tickets left (fractional: they refill continuously) as of ``at`` (epoch seconds)."""

    left: float
    at: float

    def refilled(self, now: float, rate: TicketRate) -> Allowance:
        elapsed = max(0.0, now - self.at)  # a clock that went back refills nothing
        return Allowance(min(float(rate.burst), self.left + elapsed * rate.per_second), now)

    def take(self, now: float, rate: TicketRate) -> Allowance:
        """The allowance after one ticket; UploadsThrottled (saying when to retry) if
        there is none left."""
        current = self.refilled(now, rate)
        if current.left < 1.0:
            wait_s = (1.0 - current.left) / rate.per_second
            raise UploadsThrottled(
                f"upload tickets are limited to {rate.per_minute} a minute "
                f"({rate.burst} at once): retry in {math.ceil(wait_s)} s",
                wait_s,
            )
        return Allowance(current.left - 1.0, now)


@dataclass
class UploadTickets:
    """Each user's allowance, in the store."""

    store: Store
    rate: TicketRate
    fsync: bool = True

    def path(self, user_id: str) -> Path:
        return self.store.paths(user_id).tickets

    def take(self, user_id: str, now: float) -> None:
        """Spend one of the user's tickets (the caller holds the user's lock)."""
        path = self.path(user_id)
        after = self._read(path, now).take(now, self.rate)
        write_document(path, _FORMAT, {"left": after.left, "at": after.at}, fsync=self.fsync)

    def _read(self, path: Path, now: float) -> Allowance:
        version, body = read_document(path, _KIND, (_FORMAT,))
        if not version:
            return Allowance(float(self.rate.burst), now)
        try:
            left, at = float(body["left"]), float(body["at"])
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreCorrupt(f"{path}: not an {_KIND} file ({exc})") from exc
        if not (math.isfinite(left) and math.isfinite(at)):
            raise StoreCorrupt(f"{path}: not an {_KIND} file (left {left}, at {at})")
        return Allowance(left, at)
