"""The tracer's graph hash for a batch of generated networks in one call.

The batch is laid out as the graph builders produce it (labels index a vocabulary; edges use
local node indices, graph after graph); :func:`narbuild.tracing.graph.wl_hashes` hashes the
disjoint union, each graph refined to its own stable colouring, so every hash equals
``OpGraph.graph_hash()`` of that graph alone.
"""

from __future__ import annotations

import numpy as np

from narbuild.tracing.graph import wl_hashes as _union_hashes


def wl_hashes(vocab: tuple[str, ...] | list[str], labels: np.ndarray, num_nodes: np.ndarray,
              src: np.ndarray, dst: np.ndarray, num_edges: np.ndarray) -> list[str]:
    """``OpGraph(nodes, edges).graph_hash()`` of each graph of a batch."""
    num_graphs = len(num_nodes)
    node_base = np.concatenate([[0], np.cumsum(num_nodes)[:-1]]).astype(np.int64)
    shift = np.repeat(node_base, num_edges)
    graph = np.repeat(np.arange(num_graphs), num_nodes)
    return _union_hashes(labels, graph, src.astype(np.int64) + shift,
                         dst.astype(np.int64) + shift, num_graphs, vocab=list(vocab))
