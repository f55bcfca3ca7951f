"""How good are the groups? Pairwise precision/recall against labelled photo groups.

``photocluster eval DIR`` embeds every image of an evaluation folder (one sub-folder per
ground-truth group, ``singletons/`` for the rest), stores the vectors with the production
writer path (store + neighbour graph), clusters them with the production query path, and
scores each tier with pairwise precision and recall (:mod:`photocluster.quality.metrics`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image
from tqdm import tqdm

from photocluster.config import LINKAGES, TIER_NAMES, Settings
from photocluster.images import (
    ENCODER_MIN_SIDE,
    ImageLimits,
    copy_features,
    decode_image,
    shrink,
)
from photocluster.library import Library
from photocluster.quality.evalset import LabelledImage, read_set, truth_at
from photocluster.quality.metrics import TierScore, score_tier

EVAL_USER = "eval"
SWEEP = tuple(round(0.30 + 0.01 * i, 2) for i in range(70))  # 0.30 .. 0.99


@dataclass
class EvalReport:
    folder: str
    model: str
    n_images: int
    n_groups: int
    n_singletons: int
    graded: bool = False  # labels per tier (a generated set) or one group per folder
    tiers: dict[str, list[TierScore]] = field(default_factory=dict)  # per linkage
    #: per linkage, per tier: every threshold of SWEEP scored against that tier's labels
    sweep: dict[str, dict[str, list[TierScore]]] = field(default_factory=dict)
    #: per linkage: the recall of each edit family and kind of image, at each tier
    families: dict[str, list[FamilyRecall]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


@dataclass(frozen=True)
class FamilyRecall:
    """Of the true pairs at a tier that hold an image made by ``family``, those found."""

    family: str
    tier: str
    true_pairs: int
    found_pairs: int

    @property
    def recall(self) -> float:
        return self.found_pairs / self.true_pairs if self.true_pairs else 1.0


@dataclass
class Embedded:
    images: list[LabelledImage]
    vectors: npt.NDArray[np.float32]
    model: str
    library: Library
    truth: dict[str, dict[str, str | None]]  # per tier: image id -> label


class ImageEncoder(Protocol):
    """What the evaluation asks of an encoder (photocluster.embedder's are ones): the
    caller loads it, so that the quality tools hold no model code."""

    model_id: str
    dim: int

    def embed(self, images: Sequence[Image.Image]) -> npt.NDArray[np.float32]: ...


#: Loads the encoder, called once the set is read (a missing folder fails before a model
#: loads); the caller may cache it to share one encoder between sets.
LoadEncoder = Callable[[], ImageEncoder]


def embed_folder(
    folder: Path,
    load: LoadEncoder,
    store_root: Path,
    progress: bool = True,
    batch: int = 16,
    copy_check: bool = True,
) -> Embedded:
    """Embed every image of ``folder`` and store the vectors through the writer path; with
    ``copy_check``, each photo's ORB features too, as ingest sends them (the writer's
    geometric check then runs as in production)."""
    images = read_set(folder)
    encoder = load()
    limits = ImageLimits()
    side = Settings().embed_image_side  # the features of the picture ingest sends
    vectors = np.zeros((len(images), encoder.dim), dtype=np.float32)
    features: list[bytes | None] = []
    with tqdm(
        total=len(images),
        desc=f"embedding ({encoder.model_id})",
        unit=" images",
        disable=not progress,
    ) as bar:
        for start in range(0, len(images), batch):
            chunk = images[start : start + batch]
            pictures = [
                decode_image(item.path.read_bytes(), limits, ENCODER_MIN_SIDE) for item in chunk
            ]
            vectors[start : start + len(chunk)] = encoder.embed(pictures)
            features += [copy_features(shrink(p, side)) if copy_check else None for p in pictures]
            bar.update(len(chunk))
    library = Library.from_settings(
        Settings(store_root=store_root, model=encoder.model_id, store_fsync=False)
    )
    ids = [i.image_id for i in images]
    library.write(EVAL_USER, encoder.model_id, ids, vectors, features=features)
    truth: dict[str, dict[str, str | None]] = {t: truth_at(images, t) for t in TIER_NAMES}
    return Embedded(images, vectors, encoder.model_id, library, truth)


def evaluate(
    folder: Path,
    load: LoadEncoder,
    work: Path,
    thresholds: Mapping[str, float] | None = None,
    linkages: Sequence[str] = LINKAGES,
    progress: bool = True,
    sweep: bool = True,
    copy_check: bool = True,
) -> tuple[EvalReport, Embedded]:
    """Score the tiers (the model's defaults unless given) and, optionally, a sweep.
    ``work`` holds the evaluation's store while the caller still needs it; ``copy_check``:
    with the writer's geometric check, as in production."""
    embedded = embed_folder(folder, load, work, progress, copy_check=copy_check)
    library = embedded.library
    tiers = library.tiers(embedded.model).asked(thresholds)
    groups = {i.group for i in embedded.images if i.group is not None}
    report = EvalReport(
        str(folder),
        embedded.model,
        len(embedded.images),
        len(groups),
        sum(1 for i in embedded.images if i.group is None),
        graded=any(i.labels for i in embedded.images),
    )
    for linkage in linkages:
        result = library.cut(EVAL_USER, tiers, linkage)
        report.tiers[linkage] = [
            score_tier(t.name, t.threshold, t.groups, embedded.truth[t.name]) for t in result.tiers
        ]
        report.families[linkage] = family_recall(
            embedded.images, {t.name: t.groups for t in result.tiers}
        )
        if sweep:
            cuts = [(t, library.cut(EVAL_USER, {"t": t}, linkage).tiers[0].groups) for t in SWEEP]
            report.sweep[linkage] = {
                tier: [score_tier(tier, t, groups, embedded.truth[tier]) for t, groups in cuts]
                for tier in TIER_NAMES
            }
    return report, embedded


def family_recall(
    images: Sequence[LabelledImage], groups: Mapping[str, Sequence[Sequence[str]]]
) -> list[FamilyRecall]:
    """For each edit family (and kind: burst, other shot, other time) and tier: how many of
    the tier's true pairs that hold an image of that family share a predicted group."""
    out = []
    for tier, tier_groups in groups.items():
        predicted = {i: n for n, group in enumerate(tier_groups) for i in group}
        counts: dict[str, list[int]] = {}
        for a, b in itertools.combinations(images, 2):
            label = a.label(tier)
            if label is None or label != b.label(tier):
                continue
            found = a.image_id in predicted and predicted[a.image_id] == predicted.get(b.image_id)
            for family in set(a.families) | set(b.families):
                tally = counts.setdefault(family, [0, 0])
                tally[0] += 1
                tally[1] += found
        out += [FamilyRecall(f, tier, t, n) for f, (t, n) in sorted(counts.items())]
    return out
