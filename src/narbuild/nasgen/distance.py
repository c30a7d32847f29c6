"""Graph edit distance between DARTS cells and networks, exact and vectorised.

**The cell graph.** Seven nodes, each with a role: ``c_{k-2}``, ``c_{k-1}``, four ``add`` nodes
and the ``concat`` output. Each (op, input) slot is an edge ``input -> add node`` labelled with
its operation, and every ADD node has an unlabelled edge to ``concat``.

**The edit costs** (uniform): inserting or deleting an edge costs 1, relabelling an edge's
operation costs 1; a node may only be matched to a node of the same role (the two cell inputs are
different tensors, so swapping them is not free). Hence

- an operation change costs 1,
- an input change (the same operation read from another node) costs 2: delete and insert,
- a slot that changes both its input and its operation also costs 2 (the new edge is inserted
  with its label).

**Exactness.** Both cells have the same seven nodes and roles, so an optimal edit path is a
role-preserving bijection (deleting and re-inserting a node is never cheaper than substituting
it). The inputs and the output are anchored, so the exact GED is the minimum over the 4! = 24
relabellings of the ADD nodes of the number of edge positions whose labels differ. The
``concat`` edges are the same under every relabelling and cost nothing. :func:`networkx_ged`
computes the same number with ``networkx.graph_edit_distance`` (tests compare the two).

**Network distance** = normal-cell distance + reduction-cell distance. It is a metric (each
term is a GED with symmetric unit costs), so the triangle inequality holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from narbuild.nasgen.genotype import (
    CELL_SIZE,
    NODES,
    OPS,
    PERMS,
    STEPS,
    Genotype,
    cell_to_array,
)

_CHUNK = 8192
_FORBIDDEN = 1000  # node substitution across roles: dearer than any deletion + insertion


def cell_distances(cells: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Exact GED of each cell in ``cells`` (N, 24) to one cell ``centre`` (24,) -> (N,) int32."""
    cells = np.asarray(cells, dtype=np.int8).reshape(-1, CELL_SIZE)
    relabelled = np.asarray(centre, dtype=np.int8)[PERMS]           # (24, 24)
    out = np.empty(len(cells), dtype=np.int32)
    for start in range(0, len(cells), _CHUNK):
        block = cells[start:start + _CHUNK, None, :] != relabelled[None]   # (n, 24, 24)
        out[start:start + _CHUNK] = block.sum(axis=2, dtype=np.int16).min(axis=1)
    return out


def pair_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact GED of cell ``a[i]`` to cell ``b[i]`` for each row (both (N, 24)) -> (N,) int32."""
    a = np.asarray(a, dtype=np.int8).reshape(-1, CELL_SIZE)
    b = np.asarray(b, dtype=np.int8).reshape(-1, CELL_SIZE)
    out = np.empty(len(a), dtype=np.int32)
    for start in range(0, len(a), _CHUNK):
        stop = start + _CHUNK
        block = a[start:stop, None, :] != b[start:stop][:, PERMS]
        out[start:stop] = block.sum(axis=2, dtype=np.int16).min(axis=1)
    return out


def network_distances(normal: np.ndarray, reduce: np.ndarray,
                      centre_normal: np.ndarray, centre_reduce: np.ndarray) -> np.ndarray:
    """Network distance of N networks (cell arrays (N, 24) each) to one network -> (N,)."""
    return cell_distances(normal, centre_normal) + cell_distances(reduce, centre_reduce)


def cell_distance(a: Sequence[tuple[str, int]], b: Sequence[tuple[str, int]]) -> int:
    """Exact graph edit distance between two cells given as (op, input) pairs."""
    return int(cell_distances(cell_to_array(a)[None], cell_to_array(b))[0])


def network_distance(a: Genotype, b: Genotype) -> int:
    """Normal-cell distance + reduction-cell distance between two genotypes."""
    return cell_distance(a.normal, b.normal) + cell_distance(a.reduce, b.reduce)


def cell_graph(pairs: Sequence[tuple[str, int]]):
    """The cell as a ``networkx.DiGraph`` with ``role`` on nodes and ``op`` on edges."""
    import networkx as nx

    cell_to_array(pairs)  # validates
    g = nx.DiGraph()
    roles = ["c_{k-2}", "c_{k-1}"] + ["add"] * STEPS + ["concat"]
    g.add_nodes_from((i, {"role": r}) for i, r in enumerate(roles))
    for slot, (op, i) in enumerate(pairs):
        g.add_edge(i, 2 + slot // 2, op=op)
    for j in range(2, NODES):
        g.add_edge(j, NODES, op="concat")
    return g


def networkx_ged(a: Sequence[tuple[str, int]], b: Sequence[tuple[str, int]],
                 timeout: float | None = None) -> float | None:
    """Reference: networkx's exact GED of the two cell graphs under the costs documented above
    (a node only matches a node of its role, an edge relabel costs 1 when the operations
    differ, insertions and deletions cost 1)."""
    import networkx as nx

    return nx.graph_edit_distance(
        cell_graph(a), cell_graph(b),
        node_subst_cost=lambda x, y: 0 if x["role"] == y["role"] else _FORBIDDEN,
        edge_subst_cost=lambda x, y: 0 if x["op"] == y["op"] else 1,
        timeout=timeout,
    )


__all__ = ["OPS", "cell_distance", "cell_distances", "cell_graph", "network_distance",
           "network_distances", "networkx_ged", "pair_distances"]
