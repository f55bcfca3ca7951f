"""The load test's report: each phase summed up (rates, percentiles, errors) and printed as
tables in bench.common's layout (see :mod:`bench.loadtest`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.loadtest_clients import Phase


def ms(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q)) * 1e3 if samples else float("nan")


def phase_summary(phase: Phase) -> dict[str, Any]:
    normal, writes = phase.normal, phase.writes
    return {
        "phase": phase.name,
        "requests": len(normal.latencies_s),
        "req_per_s": len(normal.latencies_s) / phase.elapsed_s if phase.elapsed_s else 0.0,
        "p50_ms": ms(normal.latencies_s, 50),
        "p99_ms": ms(normal.latencies_s, 99),
        "max_ms": ms(normal.latencies_s, 100),
        "errors": normal.errors,
        "error_kinds": {k: v for k, v in normal.outcomes.items() if k != "200"},
        "writes": writes.writes,
        "writes_per_s": writes.writes / phase.elapsed_s if phase.elapsed_s else 0.0,
        "write_p50_ms": ms(writes.write_s, 50),
        "writer_errors": writes.errors,
        "writer_first_error": writes.first_error,
        "abusive": {
            kind: {
                "count": len(t.latencies_s),
                "statuses": dict(t.outcomes),
                "p50_ms": ms(t.latencies_s, 50),
                "max_ms": ms(t.latencies_s, 100),
            }
            for kind, t in phase.abusive.items()
        },
    }


def print_rows(title: str, header: tuple[str, ...], lines: Sequence[tuple[str, ...]]) -> None:
    """A table in bench.common's layout: a title, left-aligned columns, a rule."""
    widths = [max(len(x) for x in col) for col in zip(header, *lines, strict=True)]
    print(f"\n## {title}")
    for line in [header, tuple("-" * w for w in widths), *lines]:
        print("  ".join(x.ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())


def phase_line(s: dict[str, Any]) -> tuple[str, ...]:
    errors = str(s["errors"]) + (f" {s['error_kinds']}" if s["errors"] else "")
    writer_errors = f" ({s['writer_errors']} errors)" if s["writer_errors"] else ""
    return (
        s["phase"], str(s["requests"]), f"{s['req_per_s']:.1f}", f"{s['p50_ms']:.1f} ms",
        f"{s['p99_ms']:.1f} ms", f"{s['max_ms']:.1f} ms", errors,
        f"{s['writes_per_s']:.1f}{writer_errors}",
    )  # fmt: skip


def report(n: int, setup: str, quiet: dict[str, Any], abusive: dict[str, Any]) -> None:
    """Both phases of size ``n`` (``setup``: the clients, writers and workers), the p99
    ratio, and the abusive client's requests by kind."""
    header = ("phase", "requests", "req/s", "p50", "p99", "max", "errors", "writes/s")
    lines = [phase_line(quiet), phase_line(abusive)]
    print_rows(f"N={n}: {setup}", header, lines)
    ratio = abusive["p99_ms"] / quiet["p99_ms"]
    print(f"p99 abusive / quiet: {ratio:.2f}  within 2x: {'yes' if ratio <= 2 else 'no'}")
    kinds = [
        (kind, str(a["count"]), json.dumps(a["statuses"]), f"{a['p50_ms']:.1f} ms",
         f"{a['max_ms']:.1f} ms")
        for kind, a in abusive["abusive"].items()
    ]  # fmt: skip
    print_rows(f"N={n}: the abusive client", ("request", "sent", "statuses", "p50", "max"), kinds)
    for s in (quiet, abusive):
        if s["writer_first_error"]:
            print(f"writer error ({s['phase']}): {s['writer_first_error']}")
