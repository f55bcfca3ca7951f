"""How good are the groups: a labelled evaluation set, pairwise precision/recall, tiers.

* :mod:`~photocluster.quality.evalset`: the reproducible set of edited photo groups;
* :mod:`~photocluster.quality.metrics`: pairwise precision, recall, F1 of one tier;
* :mod:`~photocluster.quality.evaluation`: embed a folder, store it, score the tiers;
* :mod:`~photocluster.quality.calibration`: thresholds suggested from sweeps;
* :mod:`~photocluster.quality.report`: the quality table and the page of worst errors.
"""
