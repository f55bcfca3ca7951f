"""``make bench-scale``'s table: every figure, its baseline, and the issue's targets
(issue 28) marked "met" or "MISS" where one applies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.common import fmt_s

#: The targets, at N = 100,000 unless named: every API route warm, first call, its process
#: (a delete, which writes the library, the writer's: one photo's 0.3 s and 512 MB).
WARM_S, FIRST_S, READ_RSS = 0.050, 0.300, 400 * 10**6
#: The writer, one photo at N = 100,000: time over a brand-new user's, and its process.
WRITER_EXTRA_S, WRITER_RSS = 0.3, 512 * 10**6
IMPORT_S, IMPORT_RSS = 120.0, 10**9
#: At N = 2,000: GET clusters (defaults), warm.
SMALL_N, SMALL_CLUSTERS_S = 2000, 0.005
TARGET_N = 100_000
#: (limit, as shown) of a route's first call, warm call and RSS: a read's, a write's.
_READ = ((FIRST_S, "300 ms"), (WARM_S, "50 ms"), (READ_RSS, "400 MB"))
_WRITE = ((WRITER_EXTRA_S, "0.3 s"), (WRITER_EXTRA_S, "0.3 s"), (WRITER_RSS, "512 MB"))
HEADER = ("case", "median", "p95", "bytes read", "faults", "peak RSS", "baseline", "ratio")


@dataclass(frozen=True)
class Line:
    """One row of the table, already formatted."""

    case: str
    median: str
    p95: str = ""
    bytes_read: str = ""
    faults: str = ""
    peak_rss: str = ""
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    note: str = ""


def fmt_bytes(count: float | None) -> str:
    if count is None:
        return "-"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} B"


def mark(value: float, limit: float, shown: str) -> str:
    """``<= shown: met`` or ``<= shown: MISS``."""
    return f"<= {shown}: {'met' if value <= limit else 'MISS'}"


def _ratio(baseline: float | None, ours: float | None) -> str:
    """baseline / ours (above 1: ours is faster)."""
    if not baseline or not ours:
        return ""
    ratio = baseline / ours
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.1f}x" if ratio >= 1 else f"{ratio:.2f}x"


def table(measured: dict[int, dict[str, Any]]) -> list[Line]:
    """Rows for every N of one shape: import, each route first and warm, the writer."""
    lines = []
    for n, result in measured.items():
        lines.append(_import_line(n, result["import"]))
        for route, figures in result["routes"].items():
            lines += _route_lines(n, route, figures, result["baselines"].get(route))
        lines += _writer_lines(n, result["writer"])
    return lines


def _import_line(n: int, figures: dict[str, Any]) -> Line:
    marks = []
    if n == TARGET_N:
        marks = [
            mark(figures["wall_s"], IMPORT_S, "120 s"),
            mark(figures["maxrss"], IMPORT_RSS, "1 GB"),
        ]
    return Line(
        f"N={n:,} import-embeddings (whole process)",
        fmt_s(figures["wall_s"]),
        bytes_read=fmt_bytes(figures["rchar"]),
        peak_rss=fmt_bytes(figures["maxrss"]),
        target="; ".join(marks),
    )


def _route_lines(
    n: int, route: str, figures: dict[str, Any], baseline: dict[str, Any] | None
) -> list[Line]:
    first, warm = figures["first"], figures["warm"]
    base_first = baseline["first"]["latency_s"] if baseline and "first" in baseline else None
    base_warm = baseline["warm"]["median_s"] if baseline and "warm" in baseline else None
    first_marks, warm_marks = [], []
    if n == TARGET_N:
        writes = route.startswith("DELETE")  # a write of the library: the writer's targets
        first_s, warm_s, rss = _WRITE if writes else _READ
        first_marks = [mark(first["latency_s"], *first_s), mark(first["maxrss"], *rss)]
        warm_marks = [mark(warm["median_s"], *warm_s), mark(warm["maxrss"], *rss)]
    if n == SMALL_N and route == "GET clusters":
        warm_marks = [mark(warm["median_s"], SMALL_CLUSTERS_S, "5 ms")]
    note = baseline.get("skipped", "") if baseline else ""
    return [
        Line(
            f"N={n:,} {route}: first call, new process",
            fmt_s(first["latency_s"]),
            bytes_read=fmt_bytes(first["rchar"]),
            faults=f"{first['faults']:,}",
            peak_rss=fmt_bytes(first["maxrss"]),
            baseline=fmt_s(base_first) if base_first else "",
            ratio=_ratio(base_first, first["latency_s"]),
            target="; ".join(first_marks),
            note="; ".join(
                filter(
                    None, [f"app built in {fmt_s(first['import_and_app_s'])} (imports too)", note]
                )
            ),
        ),
        Line(
            f"N={n:,} {route}: warm, {warm['runs']} calls",
            fmt_s(warm["median_s"]),
            fmt_s(warm["p95_s"]),
            bytes_read=fmt_bytes(warm["rchar"]) + " / call",
            faults=f"{warm['faults']:,} / call",
            peak_rss=fmt_bytes(warm["maxrss"]),
            baseline=fmt_s(base_warm) if base_warm else "",
            ratio=_ratio(base_warm, warm["median_s"]),
            target="; ".join(warm_marks),
            note=note,
        ),
    ]


def _writer_lines(n: int, writer: dict[str, dict[str, Any]]) -> list[Line]:
    lines = []
    for batch in ("1", "10"):
        ours, fresh = writer[f"{batch} library"], writer[f"{batch} new user"]
        extra = ours["median_s"] - fresh["median_s"]
        marks = []
        if n == TARGET_N and batch == "1":
            marks = [
                mark(extra, WRITER_EXTRA_S, "+0.3 s"),
                mark(ours["maxrss"], WRITER_RSS, "512 MB"),
            ]
        lines.append(
            Line(
                f"N={n:,} writer: {batch} new photo{'s' * (batch != '1')}, new process"
                f" (runs: {ours['runs']})",
                fmt_s(ours["median_s"]),
                fmt_s(ours["p95_s"]),
                bytes_read=fmt_bytes(ours["rchar"]),
                peak_rss=fmt_bytes(ours["maxrss"]),
                baseline=fmt_s(fresh["median_s"]),
                ratio=_ratio(fresh["median_s"], ours["median_s"]),
                target="; ".join(marks),
                note=f"baseline = a brand-new user (peak RSS {fmt_bytes(fresh['maxrss'])}); "
                f"+{extra:.3f} s; whole process {fmt_s(ours['process_s'])}"
                + (f"; max_images_per_user {ours['max_images']:,}" if "max_images" in ours else ""),
            )
        )
    return lines


def print_table(title: str, lines: list[Line], machine: str = "") -> None:
    """case | median | p95 | bytes read | faults | peak RSS | baseline | ratio | target | note"""
    header = (*HEADER, "target", "note")
    rows = [header] + [tuple(line.__dict__.values()) for line in lines]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    print(f"\n## {title}  (baseline: the seed's method, scikit-learn on demand, same run)")
    if machine:
        print(f"# {machine}")
    for row in [header, tuple("-" * w for w in widths), *rows[1:]]:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip())
