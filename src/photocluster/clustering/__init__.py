"""Which photos look alike: similarity, the write-time neighbour graph, linkage, tiers.

* :mod:`~photocluster.clustering.similarity`: scores, top-k neighbours, pair ranges;
* :mod:`~photocluster.clustering.graph`: the neighbour graph, updated at every write;
* :mod:`~photocluster.clustering.graph_types`: what the graph holds and how a query cuts it;
* :mod:`~photocluster.clustering.graph_edges`: the edges a write adds (neighbours, copies);
* :mod:`~photocluster.clustering.linkage`: connected components, complete and average linkage;
* :mod:`~photocluster.clustering.graph_file`: the graph on disk beside the store;
* :mod:`~photocluster.clustering.tiers`: groups per tier, cut from the graph.

Pure functions over numpy arrays: no files but the graph file, no locks, no services.
"""
