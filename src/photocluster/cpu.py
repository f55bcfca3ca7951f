"""CPU time by stage: what a piece of work cost, counted in the threads that did it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field


@dataclass
class StageCpu:
    """CPU milliseconds by stage, added to from any thread."""

    ms: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the calling thread's CPU inside the block as ``name``."""
        started = time.thread_time()
        try:
            yield
        finally:
            self.add(name, (time.thread_time() - started) * 1e3)

    def add(self, name: str, ms: float) -> None:
        with self._lock:
            self.ms[name] = self.ms.get(name, 0.0) + max(0.0, ms)

    def merge(self, reported: Mapping[str, object], stages: tuple[str, ...]) -> float:
        """Add what another process reported for ``stages`` (unknown names and values that
        are not numbers are ignored); returns the total added."""
        added = 0.0
        for name in stages:
            value = reported.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.add(name, float(value))
                added += max(0.0, float(value))
        return added
