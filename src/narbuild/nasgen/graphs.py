"""The two graph views of a DARTS network, built for many networks at once.

**Network.** As DARTS's ``NetworkCIFAR`` (without the auxiliary head and drop-path): a stem
(3x3 convolution, batch norm), ``depth`` cells, reduction cells at ``depth // 3`` and
``2 * depth // 3``, global average pooling, a linear classifier. Cell ``k`` reads the outputs of
cells ``k-2`` and ``k-1`` (the stem stands in for missing ones). Each cell preprocesses its two
inputs (``ReLUConvBN`` 1x1, or ``FactorizedReduce`` for ``c_{k-2}`` after a reduction cell),
applies one operation per (op, input) slot, adds the two results of each node and concatenates
the four nodes. In a reduction cell, operations reading a cell input have stride 2.

**Operator-level view** (the ``nodes``/``edge_*`` columns): every module expanded into the
autograd operators a trace of the real module records, after removing ``AccumulateGrad`` and
``TBackward0`` as for real models (:mod:`narbuild.nasgen.modules` builds that module and the
tests check the two graphs are isomorphic, labels included). Per DARTS operation:

=================  ===============================================================
sep_conv_kxk        (ReLU, depthwise conv, pointwise conv, batch norm) x 2
dil_conv_kxk        ReLU, dilated depthwise conv, pointwise conv, batch norm
max_pool_3x3        MaxPool2DWithIndices
avg_pool_3x3        AvgPool2D
skip_connect        stride 1: identity, *no node* (the ADD reads the input directly);
                    stride 2: FactorizedReduce = ReLU, two 1x1 convs (the second on the input
                    sliced by ``[:, :, 1:, 1:]``: two Slice nodes), Cat, batch norm
=================  ===============================================================

Cell preprocessing is ReLU, 1x1 conv, batch norm; the stem is conv, batch norm; the head is
Mean (adaptive average pooling to 1x1), View, Addmm. ADD nodes are ``AddBackward0`` and the
concatenation ``CatBackward0``.

**DARTS-level view** (the ``darts_*`` columns), as the NAR paper draws it (appendix A.4): one
node per operation, including ``skip_connect``, inserted on its edge; ``add`` and ``concat``
nodes; ``stem``, ``global_avg_pool`` and ``classifier``. Preprocessing is not drawn: an
operation reading ``c_{k-1}`` has an edge from the previous cell's ``concat``.

Node order is topological (stem, then each cell: preprocessing, each node's two operations and
its ADD, the concatenation; then the head); edges are sorted by (source, target).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from narbuild.errors import NarbuildError
from narbuild.nasgen.genotype import OPS, STEPS, Genotype, arrays_to_slots, check_cell

# Autograd operator names, read off traces of the real modules (torch 2.x, eval mode).
RELU, CONV, BN = "ReluBackward0", "ConvolutionBackward0", "NativeBatchNormBackward0"
ADD, CAT, SLICE = "AddBackward0", "CatBackward0", "SliceBackward0"
MAXPOOL, AVGPOOL = "MaxPool2DWithIndicesBackward0", "AvgPool2DBackward0"
MEAN, VIEW, ADDMM = "MeanBackward1", "ViewBackward0", "AddmmBackward0"

REMOVED_OPS = frozenset({"AccumulateGrad", "TBackward0"})
"""Autograd nodes dropped from a trace before comparing (as for real models)."""


@dataclass(frozen=True)
class Template:
    """A piece of graph: node labels and internal edges; external inputs enter node 0 and the
    output leaves the last node. No nodes means the piece passes its input through."""

    labels: tuple[str, ...]
    edges: tuple[tuple[int, int], ...] = ()


def chain(*labels: str) -> Template:
    return Template(labels, tuple((i, i + 1) for i in range(len(labels) - 1)))


IDENTITY = Template(())
FACTORIZED_REDUCE = Template(
    (RELU, CONV, SLICE, SLICE, CONV, CAT, BN),
    ((0, 1), (0, 2), (2, 3), (3, 4), (1, 5), (4, 5), (5, 6)),
)
_SEP = (RELU, CONV, CONV, BN)


def _operator_op(op: str, stride2: bool) -> Template:
    if op == "skip_connect":
        return FACTORIZED_REDUCE if stride2 else IDENTITY
    if op.startswith("sep_conv"):
        return chain(*_SEP, *_SEP)
    if op.startswith("dil_conv"):
        return chain(*_SEP)
    return chain(MAXPOOL if op == "max_pool_3x3" else AVGPOOL)


@dataclass(frozen=True)
class View:
    """How each part of a network is drawn in one view."""

    name: str
    stem: Template
    preprocess: Template           # ReLUConvBN
    preprocess_reduce: Template    # c_{k-2} after a reduction cell
    add: Template
    concat: Template
    head: Template
    ops: dict[tuple[str, bool], Template]   # (op, stride 2) -> template


OPERATOR_VIEW = View(
    "operator", chain(CONV, BN), chain(RELU, CONV, BN), FACTORIZED_REDUCE, chain(ADD),
    chain(CAT), chain(MEAN, VIEW, ADDMM),
    {(op, s): _operator_op(op, s) for op in OPS for s in (False, True)},
)
DARTS_VIEW = View(
    "darts", chain("stem"), IDENTITY, IDENTITY, chain("add"), chain("concat"),
    chain("global_avg_pool", "classifier"),
    {(op, s): chain(op) for op in OPS for s in (False, True)},
)


def reduction_cells(depth: int) -> tuple[int, int]:
    """Positions of the two reduction cells (DARTS: one and two thirds of the depth)."""
    if depth < 3:
        raise NarbuildError(f"depth {depth} is too small", "a network needs at least 3 cells "
                            "(a normal cell and two reduction cells)")
    return depth // 3, 2 * depth // 3


class _Builder:
    """A graph under construction, piece by piece (the readable, one-network reference)."""

    def __init__(self) -> None:
        self.nodes: list[str] = []
        self.edges: set[tuple[int, int]] = set()

    def add(self, template: Template, *sources: int | None) -> int | None:
        """Append ``template`` fed by ``sources``; return its output node (or the source it
        passes through)."""
        if not template.labels:
            return sources[0]
        base = len(self.nodes)
        self.nodes.extend(template.labels)
        self.edges.update((base + a, base + b) for a, b in template.edges)
        self.edges.update((s, base) for s in sources if s is not None)
        return base + len(template.labels) - 1

    def cell(self, view: View, pairs: Sequence[tuple[str, int]], s0: int | None,
             s1: int | None, reduction: bool, reduction_prev: bool) -> int | None:
        states = [self.add(view.preprocess_reduce if reduction_prev else view.preprocess, s0),
                  self.add(view.preprocess, s1)]
        for j in range(len(pairs) // 2):
            outs = [self.add(view.ops[(op, reduction and i < 2)], states[i])
                    for op, i in pairs[2 * j:2 * j + 2]]
            states.append(self.add(view.add, *outs))
        return self.add(view.concat, *states[2:])

    def result(self) -> tuple[list[str], list[tuple[int, int]]]:
        return self.nodes, sorted(self.edges)


def cell_graph(pairs: Sequence[tuple[str, int]], reduction: bool = False,
               reduction_prev: bool = False, view: View | None = None
               ) -> tuple[list[str], list[tuple[int, int]]]:
    """One cell's graph (nodes, edges), its two inputs left out (as when a cell is traced on
    two leaf tensors)."""
    check_cell(pairs)
    builder = _Builder()
    builder.cell(view or OPERATOR_VIEW, pairs, None, None, reduction, reduction_prev)
    return builder.result()


def network_graph(genotype: Genotype, depth: int = 8, view: View | None = None
                  ) -> tuple[list[str], list[tuple[int, int]]]:
    """One network's graph (nodes, edges), built piece by piece: the reference that
    :func:`build_graphs` computes in bulk."""
    view = view or OPERATOR_VIEW
    check_cell(genotype.normal, genotype.normal_concat)
    check_cell(genotype.reduce, genotype.reduce_concat)
    red = reduction_cells(depth)
    builder = _Builder()
    s0 = s1 = builder.add(view.stem)
    for k in range(depth):
        pairs = genotype.reduce if k in red else genotype.normal
        s0, s1 = s1, builder.cell(view, pairs, s0, s1, k in red, k - 1 in red)
    builder.add(view.head, s1)
    return builder.result()


@dataclass
class NasGraphBatch:
    """Graphs of N networks: flat node labels and local edge lists with per-network counts."""

    vocab: tuple[str, ...]
    labels: np.ndarray        # (total nodes,) int32 index into vocab
    num_nodes: np.ndarray     # (N,) int64
    src: np.ndarray           # (total edges,) int32, local node index
    dst: np.ndarray
    num_edges: np.ndarray     # (N,) int64

    def graph(self, i: int) -> tuple[list[str], list[tuple[int, int]]]:
        """Network ``i`` as (node labels, edges)."""
        n0, n1 = _bounds(self.num_nodes, i)
        e0, e1 = _bounds(self.num_edges, i)
        nodes = [self.vocab[x] for x in self.labels[n0:n1]]
        return nodes, list(zip(self.src[e0:e1].tolist(), self.dst[e0:e1].tolist()))


def _bounds(counts: np.ndarray, i: int) -> tuple[int, int]:
    start = int(counts[:i].sum())
    return start, start + int(counts[i])


class _Table:
    """Templates of a view, numbered, with their labels and edges pooled into flat arrays."""

    def __init__(self, view: View) -> None:
        self.templates: list[Template] = []
        self.ids: dict[Template, int] = {}
        self.vocab: list[str] = []
        self.view = view

    def id(self, template: Template) -> int:
        if template not in self.ids:
            self.ids[template] = len(self.templates)
            self.templates.append(template)
        return self.ids[template]

    def freeze(self) -> None:
        self.vocab = sorted({x for t in self.templates for x in t.labels})
        index = {x: i for i, x in enumerate(self.vocab)}
        self.length = np.array([len(t.labels) for t in self.templates], dtype=np.int64)
        self.n_edges = np.array([len(t.edges) for t in self.templates], dtype=np.int64)
        self.label_start = np.concatenate([[0], np.cumsum(self.length)[:-1]])
        self.edge_start = np.concatenate([[0], np.cumsum(self.n_edges)[:-1]])
        self.label_pool = np.array([index[x] for t in self.templates for x in t.labels]
                                   + [0], dtype=np.int32)
        pool = [e for t in self.templates for e in t.edges] + [(0, 0)]
        self.edge_pool = np.array(pool, dtype=np.int64)


def build_graphs(normal: np.ndarray, reduce: np.ndarray, depth: int,
                 view: View) -> NasGraphBatch:
    """The ``view`` graphs of N networks given their cells as arrays (N, 24)."""
    n = len(normal)
    red = reduction_cells(depth)
    table = _Table(view)
    op_ids = np.array([[table.id(view.ops[(op, s)]) for s in (False, True)] for op in OPS])
    fixed = {name: table.id(getattr(view, name)) for name in
             ("stem", "preprocess", "preprocess_reduce", "add", "concat", "head")}
    table.freeze()
    slots = {False: arrays_to_slots(normal), True: arrays_to_slots(reduce)}

    # Segment plan: (N, S) template ids, in node order.
    per_cell = 2 + 3 * STEPS + 1
    seg = np.empty((n, 2 + per_cell * depth), dtype=np.int64)
    seg[:, 0] = fixed["stem"]
    seg[:, -1] = fixed["head"]
    for k in range(depth):
        base = 1 + per_cell * k
        reduction, after_reduction = k in red, k - 1 in red
        ops, inputs = slots[reduction]
        seg[:, base] = fixed["preprocess_reduce" if after_reduction else "preprocess"]
        seg[:, base + 1] = fixed["preprocess"]
        for j in range(STEPS):
            for half in (0, 1):
                slot = 2 * j + half
                stride2 = (inputs[:, slot] < 2) & reduction
                seg[:, base + 2 + 3 * j + half] = op_ids[ops[:, slot] - 1, stride2.astype(int)]
            seg[:, base + 4 + 3 * j] = fixed["add"]
        seg[:, base + 2 + 3 * STEPS] = fixed["concat"]

    length = table.length[seg]                                     # (N, S)
    num_nodes = length.sum(axis=1)
    net_base = np.concatenate([[0], np.cumsum(num_nodes)[:-1]])
    offset = net_base[:, None] + np.cumsum(length, axis=1) - length  # first node of each segment
    last = offset + length - 1

    flat_seg, flat_len, flat_off = seg.ravel(), length.ravel(), offset.ravel()
    labels = _expand(table.label_pool, table.label_start[flat_seg], flat_len)
    edge_count = table.n_edges[flat_seg]
    inner = table.edge_pool[_expand_index(table.edge_start[flat_seg], edge_count)]
    inner = inner + np.repeat(flat_off, edge_count)[:, None]

    links: list[tuple[np.ndarray, np.ndarray]] = []

    def enter(source: np.ndarray, s: int) -> np.ndarray:
        """Feed ``source`` (N,) into segment column ``s``; return the segment's output node."""
        has = length[:, s] > 0
        links.append((source[has], offset[has, s]))
        return np.where(has, last[:, s], source)

    prev_prev = prev = last[:, 0]
    for k in range(depth):
        base = 1 + per_cell * k
        _, inputs = slots[k in red]
        states = np.empty((n, 2 + STEPS), dtype=np.int64)
        states[:, 0] = enter(prev_prev, base)
        states[:, 1] = enter(prev, base + 1)
        rows = np.arange(n)
        for j in range(STEPS):
            add = base + 4 + 3 * j
            for half in (0, 1):
                source = states[rows, inputs[:, 2 * j + half]]
                links.append((enter(source, base + 2 + 3 * j + half), offset[:, add]))
            states[:, 2 + j] = last[:, add]
        cat = base + 2 + 3 * STEPS
        for j in range(STEPS):
            links.append((states[:, 2 + j], offset[:, cat]))
        prev_prev, prev = prev, last[:, cat]
    enter(prev, seg.shape[1] - 1)

    src = np.concatenate([inner[:, 0]] + [a for a, _ in links])
    dst = np.concatenate([inner[:, 1]] + [b for _, b in links])
    width = int(num_nodes.sum() + 1)
    key = np.sort(src * width + dst)             # sorted by (source, target) ...
    key = key[np.concatenate([[True], key[1:] != key[:-1]])]   # ... without duplicates
    src, dst = key // width, key % width
    net = np.searchsorted(net_base, src, side="right") - 1
    num_edges = np.bincount(net, minlength=n)
    return NasGraphBatch(tuple(table.vocab), labels, num_nodes,
                      (src - net_base[net]).astype(np.int32),
                      (dst - net_base[net]).astype(np.int32), num_edges)


def _expand_index(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(start, start + count)`` for each pair, vectorised."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    within = np.arange(total) - np.repeat(ends - counts, counts)
    return np.repeat(starts, counts) + within


def _expand(pool: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return pool[_expand_index(starts, counts)]
