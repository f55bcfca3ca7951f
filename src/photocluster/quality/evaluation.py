"""How good are the groups? Pairwise precision/recall against labelled photo groups.

``photocluster eval DIR`` embeds every image of an evaluation folder (one sub-folder per
ground-truth group, ``singletons/`` for the rest), stores the vectors with the production
writer path (store + neighbour graph), clusters them with the production query path, and
scores each tier with pairwise precision and recall (:mod:`photocluster.quality.metrics`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from photocluster.config import LINKAGES, EncoderRuntime, Settings
from photocluster.ingest.images import ENCODER_MIN_SIDE, ImageLimits, decode_image
from photocluster.library import Library
from photocluster.quality.evalset import LabelledImage, read_set
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
    tiers: dict[str, list[TierScore]] = field(default_factory=dict)  # per linkage
    sweep: dict[str, list[TierScore]] = field(default_factory=dict)  # per linkage

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


@dataclass
class Embedded:
    images: list[LabelledImage]
    vectors: npt.NDArray[np.float32]
    model: str
    library: Library
    truth: dict[str, str | None]


def embed_folder(
    folder: Path,
    model: str,
    store_root: Path,
    progress: bool = True,
    batch: int = 16,
    runtime: EncoderRuntime = "torch",
) -> Embedded:
    """Embed every image of ``folder`` and store the vectors through the writer path."""
    from photocluster.embedder.loader import load_encoder

    images = read_set(folder)
    encoder = load_encoder(model, batch_size=batch, runtime=runtime)
    limits = ImageLimits()
    vectors = np.zeros((len(images), encoder.dim), dtype=np.float32)
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
            bar.update(len(chunk))
    library = Library.from_settings(
        Settings(store_root=store_root, model=encoder.model_id, store_fsync=False)
    )
    library.write(EVAL_USER, encoder.model_id, [i.image_id for i in images], vectors)
    return Embedded(
        images, vectors, encoder.model_id, library, {i.image_id: i.group for i in images}
    )


def evaluate(
    folder: Path,
    model: str,
    work: Path,
    thresholds: Mapping[str, float] | None = None,
    linkages: Sequence[str] = LINKAGES,
    progress: bool = True,
    sweep: bool = True,
    runtime: EncoderRuntime = "torch",
) -> tuple[EvalReport, Embedded]:
    """Score the tiers (the model's defaults unless given) and, optionally, a sweep.
    ``work`` holds the evaluation's store while the caller still needs it."""
    embedded = embed_folder(folder, model, work, progress, runtime=runtime)
    library = embedded.library
    tiers = library.thresholds(embedded.model, thresholds or {})
    groups = {i.group for i in embedded.images if i.group is not None}
    report = EvalReport(
        str(folder),
        embedded.model,
        len(embedded.images),
        len(groups),
        sum(1 for i in embedded.images if i.group is None),
    )
    for linkage in linkages:
        result = library.cut(EVAL_USER, tiers, linkage)
        report.tiers[linkage] = [
            score_tier(t.name, t.threshold, t.groups, embedded.truth) for t in result.tiers
        ]
        if sweep:
            report.sweep[linkage] = [
                score_tier(
                    f"t{t}",
                    t,
                    library.cut(EVAL_USER, {"t": t}, linkage).tiers[0].groups,
                    embedded.truth,
                )
                for t in SWEEP
            ]
    return report, embedded
