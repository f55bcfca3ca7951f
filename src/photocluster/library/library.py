"""A user's photo library: the store, its neighbour graph and its image records, kept in step.

Every service goes through this class: the writer Lambda (``write``, ``delete``,
``record``), the cluster API and the CLI (``clusters``, ``similar``, ``pairs``, ``images``,
``stats``). Writes update the store, the graph and the records under the user's one
exclusive lock; reads use the graph, rebuilt first when a writer died before updating it.

Every request's work is bounded: reads from the graph cost about the groups they return;
thresholds below the graph's floor need every pair, computed on demand only for libraries
of at most ``on_demand_max_images`` images (else 422 ``threshold_below_floor``).
"""

from __future__ import annotations

from photocluster.library.marks import LibraryMarks
from photocluster.library.photos import LibraryPhotos
from photocluster.library.queries import LibraryQueries
from photocluster.library.writes import LibraryWrites


class Library(LibraryWrites, LibraryQueries, LibraryPhotos, LibraryMarks):
    """Per-user operations over a :class:`Store`, the graphs and the records beside it:
    the writes, the questions about likeness, about the photos, and the user's decisions
    (one module each; their shared parts in :mod:`photocluster.library.parts`)."""
