"""Neighbour encoding (the paper's Eq. 2), a canonical graph hash, and a canonical node order.

Labels are 64-bit hashes, never per-graph label ids: a node with the same operator and the same
order-``s`` neighbourhood gets the same label in every graph, so motifs (and their embeddings) are
shared across graphs. One step replaces each node's label by a hash of its own label, the multiset
of its parents' labels and the multiset of its children's labels (parents and children kept apart),
which is Eq. 2 with node labels in ``M^1`` and both directions as neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from narbuild.hashing import _U, mix64, name_hash


def op_labels(op_names: Sequence[str]) -> np.ndarray:
    """Step-0 labels: the hash of each node's operator name."""
    table = {n: name_hash(n) for n in set(op_names)}
    return np.fromiter((table[n] for n in op_names), dtype=_U, count=len(op_names))


def _segment_sum(keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Sum of ``values`` per key in ``0..n-1`` (uint64, wrapping); keys need not be sorted."""
    out = np.zeros(n, dtype=_U)
    if len(keys):
        order = np.argsort(keys, kind="stable")
        k, v = keys[order], values[order]
        starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        out[k[starts]] = np.add.reduceat(v, starts)
    return out


def encode_steps(labels: np.ndarray, src: np.ndarray, dst: np.ndarray, steps: int
                 ) -> list[np.ndarray]:
    """Labels after 0, 1, .., ``steps`` steps of neighbour encoding (``steps + 1`` arrays)."""
    n = len(labels)
    out = [labels]
    for _ in range(steps):
        cur = out[-1]
        parents = _segment_sum(dst, mix64(cur[src], 1), n)
        children = _segment_sum(src, mix64(cur[dst], 2), n)
        out.append(mix64(cur ^ mix64(parents, 3) ^ (mix64(children, 4) * _U(3)), 5))
    return out


def encode(op_names: Sequence[str], src: np.ndarray, dst: np.ndarray, steps: int) -> np.ndarray:
    """Each node's label ``C^s`` after ``steps`` steps of neighbour encoding (uint64)."""
    return encode_steps(op_labels(op_names), src, dst, steps)[-1]


def graph_hash(op_names: Sequence[str], src: np.ndarray, dst: np.ndarray) -> str:
    """Canonical hash of a cleaned graph (32 hex characters): the tracer's stable 1-WL hash
    (:func:`narbuild.tracing.graph.wl_hashes`), equal for equal operators and structure
    whatever the node order. A fixed number of rounds is not enough: 3 rounds merge hundreds of
    non-isomorphic DARTS networks."""
    from narbuild.tracing.graph import wl_hashes

    graph = np.zeros(len(op_names), dtype=np.int64)
    return wl_hashes(list(op_names), graph, np.asarray(src), np.asarray(dst), 1)[0][:32]


def heights(num_nodes: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Longest path from each node to a sink (sinks are 0), peeling sinks off the graph.

    A plain loop over the edges: per level numpy calls cost more than they save on graphs that
    are thousands of levels deep."""
    if not len(src):
        return np.zeros(num_nodes, dtype=np.int64)
    order = np.argsort(dst, kind="stable")
    par = src[order].tolist()
    indptr = np.searchsorted(dst[order], np.arange(num_nodes + 1)).tolist()
    outdeg = np.bincount(src, minlength=num_nodes)
    stack = np.flatnonzero(outdeg == 0).tolist()
    outdeg = outdeg.tolist()
    height = [0] * num_nodes
    while stack:
        v = stack.pop()
        up = height[v] + 1
        for p in par[indptr[v]:indptr[v + 1]]:
            height[p] = max(height[p], up)
            outdeg[p] -= 1
            if not outdeg[p]:
                stack.append(p)
    return np.array(height, dtype=np.int64)


def node_order(labels: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """A canonical sequence of the nodes: data-flow order, each node as late as possible (by its
    height to the outputs, so a weight's side chain sits next to its consumer), ties by label.
    Nodes that tie on both are interchangeable in the sequence."""
    h = heights(len(labels), src, dst)
    return np.lexsort((np.arange(len(labels)), labels, -h))
