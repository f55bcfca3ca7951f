"""How good are the groups: a labelled evaluation set, pairwise precision/recall, tiers.

* :mod:`~photocluster.quality.scenes`: the graded set (near-duplicates, scenes, subjects),
  from :mod:`~photocluster.quality.edits` (edit families), bursts and other shots;
* :mod:`~photocluster.quality.evalset`: the pictures, writing and reading labelled folders;
* :mod:`~photocluster.quality.metrics`: pairwise precision, recall, F1 of one tier;
* :mod:`~photocluster.quality.evaluation`: embed a folder, store it, score the tiers;
* :mod:`~photocluster.quality.sweep`: thresholds suggested from sweeps;
* :mod:`~photocluster.quality.report`: the quality table and the page of worst errors.
"""

from typing import Literal

#: Which sources a generated set is made of: each source belongs to one split for good.
Split = Literal["calibration", "evaluation", "all"]
SPLITS: tuple[Split, ...] = ("calibration", "evaluation", "all")
