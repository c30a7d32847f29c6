"""Operator graphs from autograd: the walk, node removal, and a canonical hash."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from narbuild.hashing import mix64, name_hash

if TYPE_CHECKING:
    import torch


@dataclass
class OpGraph:
    """A directed operator graph. ``edges`` are (producer, consumer) node indices."""

    nodes: list[str]
    edges: list[tuple[int, int]] = field(default_factory=list)

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    def graph_hash(self) -> str:
        """Canonical hash: equal for graphs with the same structure and operators, whatever
        the node order (Weisfeiler-Lehman refinement over parents and children, to stability)."""
        return wl_hash(self.nodes, self.edges)

    def to_networkx(self):
        """A ``networkx.DiGraph`` with the operator name in the node attribute ``op``."""
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from((i, {"op": op}) for i, op in enumerate(self.nodes))
        g.add_edges_from(self.edges)
        return g


def walk_autograd(outputs: Iterable[torch.Tensor]) -> OpGraph:
    """The autograd graph behind ``outputs``: one node per autograd function (its class name,
    e.g. ``AddmmBackward0``, ``AccumulateGrad``), edges in the direction data flows."""
    index: dict[int, int] = {}
    keep: list[object] = []  # hold references so id() stays unique during the walk
    nodes: list[str] = []
    edges: set[tuple[int, int]] = set()
    stack = []

    def visit(fn) -> int:
        key = id(fn)
        if key not in index:
            index[key] = len(nodes)
            nodes.append(type(fn).__name__)
            keep.append(fn)
            stack.append(fn)
        return index[key]

    for out in outputs:
        if out.grad_fn is not None:
            visit(out.grad_fn)
    while stack:
        fn = stack.pop()
        consumer = index[id(fn)]
        for child, _ in fn.next_functions:
            if child is not None:
                edges.add((visit(child), consumer))
    return OpGraph(nodes, sorted(edges))


def remove_ops(graph: OpGraph, ops: set[str]) -> OpGraph:
    """Drop nodes whose operator is in ``ops``, linking each one's producers to its consumers
    (as the NAR paper removes ``AccumulateGrad`` and ``TBackward``)."""
    parents: dict[int, list[int]] = {i: [] for i in range(len(graph.nodes))}
    children: dict[int, list[int]] = {i: [] for i in range(len(graph.nodes))}
    for s, d in graph.edges:
        parents[d].append(s)
        children[s].append(d)
    dropped = {i for i, op in enumerate(graph.nodes) if op in ops}

    def kept_parents(i: int, seen: set[int]) -> set[int]:
        out: set[int] = set()
        for p in parents[i]:
            if p in dropped:
                if p not in seen:
                    seen.add(p)
                    out |= kept_parents(p, seen)
            else:
                out.add(p)
        return out

    new_index = {}
    for i in range(len(graph.nodes)):
        if i not in dropped:
            new_index[i] = len(new_index)
    edges = set()
    for i, new in new_index.items():
        for p in kept_parents(i, set()):
            edges.add((new_index[p], new))
    nodes = [graph.nodes[i] for i in new_index]
    return OpGraph(nodes, sorted(edges))


MAX_ROUNDS = 512
"""Refinement rounds at most; a graph stops earlier when its colouring is stable."""


def _distinct_per_graph(colours: np.ndarray, graph: np.ndarray, num_graphs: int) -> np.ndarray:
    """Number of distinct colours in each graph (graph index in the top 24 bits of a key)."""
    keys = (graph.astype(np.uint64) << np.uint64(40)) | (colours >> np.uint64(24))
    keys.sort()
    distinct = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys
    return np.bincount((distinct >> np.uint64(40)).astype(np.int64), minlength=num_graphs)


class _Subgraph:
    """The nodes and edges of the graphs still refining, re-indexed, edges grouped by end."""

    def __init__(self, nodes: np.ndarray, graph: np.ndarray, src: np.ndarray, dst: np.ndarray):
        self.nodes, self.graph = nodes, graph
        self.src_by_dst, self.dst_starts, self.dst_ids = _grouped(src, dst, len(nodes))
        self.dst_by_src, self.src_starts, self.src_ids = _grouped(dst, src, len(nodes))

    def neighbour_sums(self, colours: np.ndarray, salt_up: int, salt_down: int):
        up = np.zeros(len(colours), dtype=np.uint64)
        down = np.zeros(len(colours), dtype=np.uint64)
        if len(self.src_by_dst):
            with np.errstate(over="ignore"):
                up[self.dst_ids] = np.add.reduceat(mix64(colours[self.src_by_dst], salt_up),
                                                   self.dst_starts)
                down[self.src_ids] = np.add.reduceat(mix64(colours[self.dst_by_src], salt_down),
                                                     self.src_starts)
        return up, down


def _grouped(values: np.ndarray, keys: np.ndarray, n: int):
    """``values`` sorted by ``keys``; start offset and key of each group."""
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    starts = np.flatnonzero(np.concatenate([[True], k[1:] != k[:-1]])) if len(k) else k
    return values[order], starts, k[starts] if len(k) else k


def wl_hashes(labels: list[str] | np.ndarray, graph: np.ndarray, src: np.ndarray,
              dst: np.ndarray, num_graphs: int, vocab: list[str] | None = None) -> list[str]:
    """Weisfeiler-Lehman hashes of a batch of labelled digraphs (a disjoint union).

    ``labels`` is the operator of every node (or its index in ``vocab``), ``graph`` the graph index of every node, and
    ``src``/``dst`` the edges as global node indices. Each round recolours a node from its colour
    and the multisets of its parents' and children's colours (sums of 64-bit mixes, so order
    never matters); a graph stops when a round no longer splits any colour class (the stable
    1-WL colouring), or after :data:`MAX_ROUNDS`. The hash is sha256 over the node and edge
    counts and the sorted final colours: equal for isomorphic graphs, and distinct for
    non-isomorphic ones in all but 1-WL-indistinguishable cases (and 2^-64 accidents).
    """
    if vocab is None:  # labels are operator names
        vocab, labels = np.unique(np.asarray(labels), return_inverse=True)
    colours = np.array([name_hash(str(n)) for n in vocab], dtype=np.uint64)[
        np.asarray(labels).ravel()]
    graph = np.asarray(graph, dtype=np.int64)
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    counts = _distinct_per_graph(colours, graph, num_graphs)
    active = np.ones(num_graphs, dtype=bool)
    sub = _Subgraph(np.arange(len(colours)), graph, src, dst)
    local = colours.copy()
    for _ in range(MAX_ROUNDS):
        if not active.any() or len(local) == 0:
            break
        new = _recolour(sub, local)
        new_counts = _distinct_per_graph(new, sub.graph, num_graphs)
        # Every active graph takes this round's colours (they encode the neighbourhoods even
        # when no class split); the ones whose classes did not split are then done.
        colours[sub.nodes] = local = np.where(active[sub.graph], new, local)
        refined = active & (new_counts > counts)
        keep = refined[sub.graph]
        counts = np.where(refined, new_counts, counts)
        active = refined
        if keep.sum() < 0.7 * len(keep):  # drop the graphs that are done
            sub, local = _shrink(sub, keep, src, dst, colours)
    node_counts = np.bincount(graph, minlength=num_graphs)
    edge_counts = np.bincount(graph[src], minlength=num_graphs) if len(src) else node_counts * 0
    order = np.lexsort((colours, graph))
    bounds = np.concatenate([[0], np.cumsum(node_counts)])
    sorted_colours = colours[order]
    return [
        hashlib.sha256(f"{node_counts[g]}:{edge_counts[g]}:".encode()
                       + sorted_colours[bounds[g]:bounds[g + 1]].tobytes()).hexdigest()
        for g in range(num_graphs)
    ]


def _recolour(sub: _Subgraph, colours: np.ndarray) -> np.ndarray:
    """One WL round: a node's colour from its own and its parents' and children's multisets."""
    up, down = sub.neighbour_sums(colours, 0x9E3779B97F4A7C15, 0x632BE59BD9B4E019)
    with np.errstate(over="ignore"):
        return mix64(mix64(colours, 0x85157AF5D1C7A9F3) ^ mix64(up, 1) + mix64(down, 2), 3)


def wl_colours(colours: np.ndarray, src: np.ndarray, dst: np.ndarray,
               rounds: int) -> list[np.ndarray]:
    """The node colours (uint64) of ``rounds`` WL rounds over parents and children, after the
    initial ``colours``: ``[initial, round 1, ..., round n]`` (the same recolouring as
    :func:`wl_hashes`, for a fixed number of rounds)."""
    colours = np.asarray(colours, dtype=np.uint64)
    sub = _Subgraph(np.arange(len(colours)), np.zeros(len(colours), dtype=np.int64),
                    np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64))
    out = [colours]
    for _ in range(rounds):
        out.append(_recolour(sub, out[-1]))
    return out


def _shrink(sub: _Subgraph, keep: np.ndarray, src: np.ndarray, dst: np.ndarray,
            colours: np.ndarray) -> tuple[_Subgraph, np.ndarray]:
    """The still-refining part of ``sub`` (graphs are whole, so no edge crosses the cut)."""
    nodes = sub.nodes[keep]
    position = np.full(len(colours), -1, dtype=np.int64)
    position[nodes] = np.arange(len(nodes))
    edge_keep = position[src] >= 0
    shrunk = _Subgraph(nodes, sub.graph[keep], position[src[edge_keep]], position[dst[edge_keep]])
    return shrunk, colours[nodes]


def wl_hash(nodes: list[str], edges: list[tuple[int, int]]) -> str:
    """:func:`wl_hashes` of one graph."""
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    return wl_hashes(nodes, np.zeros(len(nodes), dtype=np.int64), e[:, 0], e[:, 1], 1)[0]
