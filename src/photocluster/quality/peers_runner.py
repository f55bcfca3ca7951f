"""Run the peer tools on a list of images; write every pair they score as JSON.

Runs inside the peers' own venv (``make peers``: fastdup pins numpy 1.26 and an old
scikit-learn), so it imports nothing of photocluster: the standard library, numpy and the
peers only. ``photocluster eval-peers`` starts it and scores what it writes
(:mod:`photocluster.quality.peers`)::

    python peers_runner.py IMAGES.json OUT.json WORK_DIR [--k 10]

``IMAGES.json`` is a list of image paths; in ``OUT.json`` a pair ``[i, j, score]`` names
images by their position in that list. Each *run* says whether its score is a similarity
(higher is closer) or a distance, whether to sweep thresholds over it, and the tool's
documented default cut where it has one (with the tool's own groups there, if it makes any).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import sys
import types
from importlib import metadata
from pathlib import Path
from typing import Any

#: fastdup's telemetry (Sentry, in Python and in its C++ core) and its import-time PyPI
#: version check are off; with these set, strace shows no socket but a local AF_UNIX one.
OFFLINE_ENVIRONMENT = {"SENTRY_OPT_OUT": "1", "FASTDUP_PRODUCTION": "1"}
#: fastdup.run's documented defaults: 2 neighbours per image, pairs kept from 0.9 on,
#: connected components from ccthreshold 0.96.
FASTDUP_DEFAULT_K = 2
FASTDUP_DEFAULT_CCTHRESHOLD = 0.96
#: imagededup's find_duplicates: max_distance_threshold=10 (bits of a 64-bit hash).
PHASH_DEFAULT_DISTANCE = 10

Run = dict[str, Any]


def fastdup_runs(images: list[str], work: Path, k: int) -> list[Run]:
    """fastdup's k nearest neighbours of every image (k given, every similarity kept), and
    its own connected components with every setting at its default."""
    os.environ.update(OFFLINE_ENVIRONMENT)
    import fastdup  # type: ignore[import-not-found]

    tool = f"fastdup {fastdup.__version__}"
    swept = work / "fastdup-k"
    _run_fastdup(fastdup, images, swept, nearest_neighbors_k=k, threshold=0.0)
    defaults = work / "fastdup-defaults"
    _run_fastdup(fastdup, images, defaults)
    return [
        {
            "peer": tool,
            "setting": f"k={k}",
            "measure": "similarity",
            "pairs": _fastdup_pairs(swept, images),
            "sweep": True,
            "default": None,
        },
        {
            "peer": tool,
            "setting": f"k={FASTDUP_DEFAULT_K}, ccthreshold {FASTDUP_DEFAULT_CCTHRESHOLD}",
            "measure": "similarity",
            "pairs": _fastdup_pairs(defaults, images),
            "sweep": False,  # only pairs from 0.9 on are kept at the defaults
            "default": FASTDUP_DEFAULT_CCTHRESHOLD,
            "groups": _fastdup_components(defaults, images),
        },
    ]


def _run_fastdup(fastdup: Any, images: list[str], work: Path, **settings: Any) -> None:
    work.mkdir(parents=True, exist_ok=True)
    status = fastdup.run(images, work_dir=str(work), **settings)
    if status != 0:
        raise RuntimeError(f"fastdup.run failed (status {status}), see {work}")


def _fastdup_index(work: Path, images: list[str]) -> dict[str, int]:
    """fastdup's own image index -> position in ``images`` (it skips unreadable files)."""
    position = {path: n for n, path in enumerate(images)}
    with (work / "atrain_features.dat.csv").open() as rows:
        return {row["index"]: position[row["filename"]] for row in csv.DictReader(rows)}


def _fastdup_pairs(work: Path, images: list[str]) -> list[list[float]]:
    """similarity.csv, one row per unordered pair (fastdup lists both directions)."""
    position = {path: n for n, path in enumerate(images)}
    pairs: dict[tuple[int, int], float] = {}
    with (work / "similarity.csv").open() as rows:
        for row in csv.DictReader(rows):
            a, b = sorted((position[row["from"]], position[row["to"]]))
            pairs[(a, b)] = max(pairs.get((a, b), -1.0), float(row["distance"]))
    return [[a, b, score] for (a, b), score in sorted(pairs.items())]


def _fastdup_components(work: Path, images: list[str]) -> list[list[int]]:
    """connected_components.csv: fastdup's groups (components of two or more images)."""
    index = _fastdup_index(work, images)
    components: dict[str, list[int]] = {}
    with (work / "connected_components.csv").open() as rows:
        for row in csv.DictReader(rows):
            components.setdefault(row["component_id"], []).append(index[row["__id"]])
    return sorted(sorted(c) for c in components.values() if len(c) > 1)


def _imagededup_phash() -> Any:
    """imagededup's PHash, imported without the package's ``__init__`` files: they import
    its CNN, hence torch and torchvision, which this venv does not install."""
    import imagededup  # type: ignore[import-not-found]

    root = Path(imagededup.__file__).parent
    for name in ("methods", "utils"):
        package = types.ModuleType(f"imagededup.{name}")
        package.__path__ = [str(root / name)]
        sys.modules[package.__name__] = package
    from imagededup.methods.hashing import PHash  # type: ignore[import-not-found]

    return PHash(verbose=False)


def phash_run(images: list[str]) -> Run:
    """Every pair's Hamming distance between imagededup's perceptual hashes."""
    phash = _imagededup_phash()
    hashes = [phash.encode_image(image_file=path) for path in images]
    pairs = [
        [a, b, int(phash.hamming_distance(hashes[a], hashes[b]))]
        for a, b in itertools.combinations(range(len(images)), 2)
        if hashes[a] is not None and hashes[b] is not None
    ]
    return {
        "peer": f"imagededup {metadata.version('imagededup')} PHash",
        "setting": "Hamming distance",
        "measure": "distance",
        "pairs": pairs,
        "sweep": True,
        "default": PHASH_DEFAULT_DISTANCE,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("images", help="JSON list of image paths")
    parser.add_argument("out", help="where the pairs go (JSON)")
    parser.add_argument("work", help="fastdup's working folders go here")
    parser.add_argument("--k", type=int, default=10, help="fastdup's neighbours per image")
    args = parser.parse_args(argv)
    images = [str(Path(p).resolve()) for p in json.loads(Path(args.images).read_text())]
    runs = [*fastdup_runs(images, Path(args.work), args.k), phash_run(images)]
    Path(args.out).write_text(json.dumps({"images": images, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
