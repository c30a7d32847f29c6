"""Operator graphs from autograd: the walk, node removal, and a canonical hash."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch


@dataclass
class OpGraph:
    """A directed operator graph. ``edges`` are (producer, consumer) node indices."""

    nodes: list[str]
    edges: list[tuple[int, int]] = field(default_factory=list)

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    def graph_hash(self, iterations: int = 3) -> str:
        """Canonical hash: equal for graphs with the same structure and operators,
        whatever the node order (Weisfeiler-Lehman refinement over parents and children)."""
        return wl_hash(self.nodes, self.edges, iterations)

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
    for i in new_index:
        for p in kept_parents(i, set()):
            edges.add((new_index[p], new_index[i]))
    nodes = [graph.nodes[i] for i in new_index]
    return OpGraph(nodes, sorted(edges))


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def wl_hash(nodes: list[str], edges: list[tuple[int, int]], iterations: int = 3) -> str:
    """Weisfeiler-Lehman hash of a labelled digraph, separating parents from children."""
    preds: list[list[int]] = [[] for _ in nodes]
    succs: list[list[int]] = [[] for _ in nodes]
    for s, d in edges:
        succs[s].append(d)
        preds[d].append(s)
    labels = [_digest(op) for op in nodes]
    for _ in range(iterations):
        labels = [
            _digest(f"{labels[i]}<{','.join(sorted(labels[p] for p in preds[i]))}"
                    f">{','.join(sorted(labels[c] for c in succs[i]))}")
            for i in range(len(nodes))
        ]
    summary = f"{len(nodes)}:{len(edges)}:" + ",".join(sorted(labels))
    return hashlib.sha256(summary.encode()).hexdigest()
