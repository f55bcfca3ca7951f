"""A user's library: the store, the neighbour graph and the image records kept in step.

* :mod:`~photocluster.library.library`: ``Library``, what every service calls, made of
  :mod:`~photocluster.library.writes` (embeddings in, deletions, records, tickets),
  :mod:`~photocluster.library.queries` (groups, neighbours, pairs),
  :mod:`~photocluster.library.photos` (pages, counts, stats) and
  :mod:`~photocluster.library.marks` (not-similar decisions), on the shared
  :mod:`~photocluster.library.parts`;
* :mod:`~photocluster.library.graphs`: the graph beside the store, updated at each write;
* :mod:`~photocluster.library.images`: the images' records: status, listing, pages;
* :mod:`~photocluster.library.results`: what the operations answer.
"""

from photocluster.library.library import Library
from photocluster.library.results import (
    ClusterResult,
    ImagesPage,
    PairsPage,
    Stats,
    WriteResult,
)

__all__ = ["ClusterResult", "ImagesPage", "Library", "PairsPage", "Stats", "WriteResult"]
