"""Timing helpers and the table every benchmark prints."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    median_s: float
    p95_s: float
    runs: int


def measure(
    fn: Callable[[], object],
    repeats: int,
    warmup: int = 1,
    setup: Callable[[], object] | None = None,
) -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times; ``setup`` runs untimed
    before each call (e.g. to drop an in-memory cache)."""
    for _ in range(warmup):
        if setup:
            setup()
        fn()
    samples = []
    for _ in range(repeats):
        if setup:
            setup()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Timing(statistics.median(samples), float(np.percentile(samples, 95)), repeats)


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


@dataclass(frozen=True)
class Row:
    case: str
    ours: Timing | None
    baseline: Timing | None = None
    note: str = ""
    value: str | None = None  # for rows that report a rate instead of a time
    ratio: bool = True  # False when the baseline is a reference, not a competitor


def print_table(title: str, rows: list[Row], baseline_name: str = "") -> None:
    """case | median | p95 | baseline median | ratio (baseline / ours) | note"""
    header = ("case", "median", "p95", "baseline", "speed-up", "note")
    lines = []
    for row in rows:
        if row.value is not None:
            lines.append((row.case, row.value, "", "", "", row.note))
            continue
        ours = row.ours
        base = row.baseline
        ratio = f"{base.median_s / ours.median_s:.1f}x" if ours and base and row.ratio else ""
        lines.append(
            (
                row.case,
                fmt_s(ours.median_s if ours else None),
                fmt_s(ours.p95_s if ours else None),
                fmt_s(base.median_s) if base else "",
                ratio,
                row.note,
            )
        )
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]
    print(f"\n## {title}" + (f"  (baseline: {baseline_name})" if baseline_name else ""))
    for line in [header, tuple("-" * w for w in widths), *lines]:
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())
