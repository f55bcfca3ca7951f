"""Commands on a user's library: import-embeddings, clusters, similar, stats, reindex."""

from __future__ import annotations

import argparse
import json
import zipfile
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from photocluster.cli.common import SubParsers, UsageError, add_thresholds, command, library
from photocluster.clustering.similarity import K_MAX
from photocluster.clustering.tiers import MIN_SIZE_MAX
from photocluster.config import TIER_NAMES, Settings
from photocluster.library.bulk import BATCH, Batches, import_embeddings


def cmd_import_embeddings(args: argparse.Namespace, settings: Settings) -> int:
    """Bulk-import precomputed vectors (``.npz`` with arrays ``ids`` and ``embeddings``),
    streamed a batch at a time: bounded memory whatever the library's size."""
    ids, batches = _open_npz(Path(args.file))
    repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
    if repeated:
        raise UsageError(
            f"{args.file}: {len(repeated)} id(s) appear more than once, e.g. {repeated[:5]}; "
            "each image needs one embedding"
        )
    model = args.model or settings.model
    result = import_embeddings(library(settings), args.user, model, ids, batches)
    print(json.dumps({"user_id": args.user, "model": model, **result.to_dict()}))
    return 0


def _open_npz(path: Path) -> tuple[list[str], Batches]:
    """The ids of an ``.npz`` file and its embeddings as batches read from the archive as
    they are needed, or a UsageError saying what is wrong (checked before any is read)."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{path}: not a readable .npz file (expected numpy.savez output)")
    try:
        with zipfile.ZipFile(path) as archive:
            found = {name.removesuffix(".npy") for name in archive.namelist()}
            missing = {"ids", "embeddings"} - found
            if missing:
                raise UsageError(
                    f"{path}: missing array(s) {sorted(missing)}; found {sorted(found)}"
                )
            with archive.open("ids.npy") as handle:
                ids = np.load(handle, allow_pickle=False)
            with archive.open("embeddings.npy") as handle:
                shape, dtype, fortran = _npy_header(handle)
    except ValueError as exc:  # object arrays need pickle: refused
        raise UsageError(f"{path}: unreadable arrays ({exc})") from exc
    except (OSError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{path}: not a readable .npz file ({exc})") from exc
    if ids.dtype.kind not in "US" or ids.ndim != 1:
        raise UsageError(f"{path}: 'ids' must be a 1-D array of strings, got {ids.dtype}")
    if len(shape) != 2 or dtype.kind not in "fiu":
        raise UsageError(f"{path}: 'embeddings' must be a 2-D numeric array")
    if len(ids) != shape[0]:
        raise UsageError(f"{path}: {len(ids)} ids but {shape[0]} embeddings")
    names = [i.decode("ascii", "replace") if isinstance(i, bytes) else str(i) for i in ids.tolist()]
    return names, partial(_npy_batches, path, shape, dtype, fortran)


def _npy_header(handle: IO[bytes]) -> tuple[tuple[int, ...], np.dtype[Any], bool]:
    """The shape, dtype and Fortran order of the ``.npy`` behind ``handle`` (left at its
    first byte of data); ValueError for objects (they need pickle)."""
    version = np.lib.format.read_magic(handle)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else None
    read = np.lib.format.read_array_header_2_0 if version == (2, 0) else read
    if read is None:
        raise ValueError(f".npy format version {version} (expected 1.0 or 2.0)")
    shape, fortran, dtype = read(handle)
    if dtype.hasobject:
        raise ValueError("embeddings must be an array of numbers")
    return shape, dtype, bool(fortran)


def _npy_batches(
    path: Path, shape: tuple[int, ...], dtype: np.dtype[Any], fortran: bool
) -> Iterator[npt.NDArray[Any]]:
    """The embeddings of ``path``, ``BATCH`` rows at a time, read from the archive."""
    rows, width = shape[0], shape[1] if len(shape) > 1 else 0
    with zipfile.ZipFile(path) as archive, archive.open("embeddings.npy") as handle:
        _npy_header(handle)
        if fortran:  # column by column, no row can be read alone: read whole
            data = np.load(archive.open("embeddings.npy"), allow_pickle=False)
            yield from (data[start : start + BATCH] for start in range(0, rows, BATCH))
            return
        for start in range(0, rows, BATCH):
            count = min(BATCH, rows - start)
            data = handle.read(count * width * dtype.itemsize)
            yield np.frombuffer(data, dtype=dtype).reshape(count, width)


def cmd_clusters(args: argparse.Namespace, settings: Settings) -> int:
    """Print the user's groups per tier as JSON (the API's clusters response)."""
    thresholds = {"low": args.low, "medium": args.medium, "high": args.high}
    result, pages = library(settings).clusters_page(
        args.user, thresholds, args.linkage, args.min_size, args.limit, None, args.tier
    )
    body = result.summary() | {"tiers": [page.to_dict() for page in pages]}
    print(json.dumps(body, indent=2 if args.pretty else None))
    return 0


def cmd_not_similar(args: argparse.Namespace, settings: Settings) -> int:
    """Mark (or with --undo, unmark) every pair among these images as not similar."""
    photos = library(settings)
    action = photos.unmark_not_similar if args.undo else photos.mark_not_similar
    changed, total = action(args.user, args.images)
    print(json.dumps({"changed": changed, "total": total}))
    return 0


def cmd_similar(args: argparse.Namespace, settings: Settings) -> int:
    neighbours = library(settings).similar(args.user, args.image, args.k, args.min_score)
    print(json.dumps({"image_id": args.image, "neighbors": [n.__dict__ for n in neighbours]}))
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(library(settings).stats(args.user).__dict__))
    return 0


def cmd_reindex(args: argparse.Namespace, settings: Settings) -> int:
    graph = library(settings).reindex(args.user)
    summary = {"n_images": graph.n, "edges": len(graph.edge_u), "floor": graph.floor}
    print(json.dumps({"user_id": args.user, **summary}))
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(sub: SubParsers) -> None:
    p = command(sub, "import-embeddings", cmd_import_embeddings, "bulk-import vectors (.npz)")
    p.add_argument("--user", required=True)
    p.add_argument("--model", help="encoder id the vectors came from (default: configured)")
    p.add_argument("file")

    p = command(sub, "clusters", cmd_clusters, "print a user's groups per tier as JSON")
    p.add_argument("--user", required=True)
    add_thresholds(p)
    p.add_argument("--min-size", type=int, default=2, help=f"1..{MIN_SIZE_MAX}")
    p.add_argument("--tier", choices=TIER_NAMES, help="only this tier's groups")
    p.add_argument("--limit", type=_positive, help="groups per tier (default: all)")
    p.add_argument("--pretty", action="store_true")

    p = command(sub, "not-similar", cmd_not_similar, "mark images as not similar (all pairs)")
    p.add_argument("--user", required=True)
    p.add_argument("--undo", action="store_true", help="unmark them instead")
    p.add_argument("images", nargs="+", help="2 to 100 image ids")

    p = command(sub, "similar", cmd_similar, "top-k neighbours of one image")
    p.add_argument("--user", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("-k", type=int, default=10, help=f"neighbours to return (1..{K_MAX})")
    p.add_argument("--min-score", type=float, default=0.0, help="in [0, 1]")

    p = command(sub, "stats", cmd_stats, "a user's store and graph figures")
    p.add_argument("--user", required=True)

    p = command(sub, "reindex", cmd_reindex, "rebuild a user's neighbour graph from the store")
    p.add_argument("--user", required=True)
