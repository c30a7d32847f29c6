"""The encoders: the NAR motif/macro encoder and the GCN, GAT and graph-VAE baselines.

All share one building block, :class:`GNN`: an operator (or motif) embedding or a linear input
layer, then ``layers`` message-passing layers of width ``dim`` (GCN as the paper's Eq. 3, GAT, or
GIN), and a mean readout per graph.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

with warnings.catch_warnings():  # PyG scripts a few helpers at import; torch 2.x deprecates it
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    from torch_geometric.nn import GATConv, GCNConv, GINConv, global_mean_pool

from narbuild.encoder.graphs import GraphBatch, ranges

KINDS = ("gcn", "gat", "gin")
READOUTS = ("mean", "distinct")


class GNN(nn.Module):
    """Node ids (``num_ids``) or features (``in_dim``) -> ``layers`` convolutions of ``kind``."""

    def __init__(self, kind: str, dim: int, layers: int, dropout: float = 0.0,
                 num_ids: int | None = None, in_dim: int | None = None,
                 readout: str = "mean") -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; use one of {READOUTS}")
        self.kind, self.readout = kind, readout
        self.input = nn.Embedding(num_ids, dim) if num_ids else nn.Linear(in_dim or dim, dim)
        self.convs = nn.ModuleList(_conv(kind, dim) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        h = self.input(x)
        for i, conv in enumerate(self.convs):
            h = conv(self.dropout(h), edge_index)
            if i < len(self.convs) - 1:
                h = torch.relu(h)
        return h

    def pool(self, g: GraphBatch, table: torch.Tensor | None = None) -> torch.Tensor:
        """One vector per graph: the mean of its node states. Node ``i``'s input is ``g.x[i]``
        (an id), or row ``g.x[i]`` of ``table`` (features, e.g. motif embeddings). With the
        ``distinct`` readout, the mean is over the graph's distinct ids of their nodes' mean."""
        if self.readout == "mean" and not self.training and self.kind == "gcn":
            return self._infer_pool(g, table)
        x = g.x if table is None else table[g.x]
        h = self(x, g.edge_index)
        if self.readout == "distinct":
            return distinct_mean_pool(h, g.x, g.batch, g.num_graphs)
        return global_mean_pool(h, g.batch, g.num_graphs)

    def _infer_pool(self, g: GraphBatch, table: torch.Tensor | None) -> torch.Tensor:
        """``pool`` in eval mode with fewer FLOPs (the same numbers to float tolerance, tested).

        A GCN layer is out = Â (h W) + b. Every node's input is a row of a table, so the input
        layer and the first W run once per distinct row instead of once per node. After each
        layer, nodes whose rows of Â h are sums of the same weighted rows (the same operator
        with the same neighbourhood: 466k motif nodes of the real set hold 19k distinct states)
        share one state, so the next W runs once per distinct state. The mean over a graph's
        nodes commutes with the last layer's W and b, so the last W runs once per graph.
        """
        if table is None:
            h, node_row = self.input.weight, g.x
        else:  # only the rows this batch uses (a big table is shared by many batches)
            used, node_row = torch.unique(g.x, return_inverse=True)
            h = self.input(table[used])
        adj, last = normalised_adjacency(g.edge_index, len(g.x), h.dtype), len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            if i == last:  # mean over each graph's nodes of Â h, then its W
                h = conv.lin(torch.sparse.mm(_mean_of_propagated(adj, node_row, len(h), g), h))
            else:
                h, node_row = _propagate_distinct(adj, node_row, conv.lin(h))
            if conv.bias is not None:
                h.add_(conv.bias)
            if i < last:
                h.relu_()
        return h


def _entries(adj: torch.Tensor, node_row: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Â's entries as (target node, row of the state table, weight): node ``u``'s state is row
    ``node_row[u]`` of a table of distinct states."""
    crow = adj.crow_indices()
    target = torch.repeat_interleave(torch.arange(len(crow) - 1, device=crow.device),
                                     crow[1:] - crow[:-1])
    return target, node_row[adj.col_indices()], adj.values()


def csr_tensor(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, cols: int) -> torch.Tensor:
    """A ``[len(crow) - 1, cols]`` CSR tensor, unchecked (the callers build valid ones)."""
    with torch.sparse.check_sparse_tensor_invariants(False), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, val, (len(crow) - 1, cols))


def _propagate_distinct(adj: torch.Tensor, node_row: torch.Tensor,
                        states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Â h for h = ``states[node_row]``, computed once per distinct row of Â h: (the distinct
    rows, each node's row among them).

    Two nodes have the same row when their entries of Â, mapped onto state rows, carry the same
    weights. That is found from a random projection of those entries: two float64 keys, the
    first grouping the nodes, the second checking the groups (to rounding: the order of a sum
    moves a key by an ulp, a different row moves it by about 1). If the check ever fails,
    every node keeps its own row."""
    target, col, val = _entries(adj, node_row)
    n = len(adj.crow_indices()) - 1
    gen = torch.Generator(device=states.device).manual_seed(0)
    probe = torch.randn(len(states), 2, dtype=torch.float64, generator=gen,
                        device=states.device)
    keys = torch.zeros(n, 2, dtype=torch.float64, device=states.device)
    keys.index_add_(0, target, val.double()[:, None] * probe[col])
    _, group = torch.unique(keys[:, 0], return_inverse=True)
    first = torch.full((int(group.max()) + 1 if n else 0,), n, device=group.device)
    first = first.scatter_reduce(0, group, torch.arange(n, device=group.device), "amin")
    if not torch.allclose(keys[first[group], 1], keys[:, 1], rtol=1e-9, atol=1e-9):
        first, group = torch.arange(n, device=group.device), torch.arange(n, device=group.device)
    crow = adj.crow_indices()  # the rows of Â of one node per group
    positions, _, starts = ranges(crow, first)
    sub_crow = torch.cat([starts, starts.new_full((1,), len(positions))])
    sub = csr_tensor(sub_crow, col[positions], val[positions], len(states))
    return torch.sparse.mm(sub, states), group


def _mean_of_propagated(adj: torch.Tensor, node_row: torch.Tensor, rows: int,
                        g: GraphBatch) -> torch.Tensor:
    """The ``[num_graphs, rows]`` matrix M with M h = each graph's mean over its nodes of Â h,
    for h = ``states[node_row]`` (``rows`` states): Â's entries summed per (graph, state row)."""
    target, col, val = _entries(adj, node_row)
    graph = g.batch[target]
    counts = torch.bincount(g.batch, minlength=g.num_graphs).to(val.dtype)
    keys, inverse = torch.unique(graph * rows + col, return_inverse=True)
    weight = torch.zeros(len(keys), dtype=val.dtype, device=val.device)
    weight.index_add_(0, inverse, val / counts[graph])
    per_graph = torch.bincount(torch.div(keys, rows, rounding_mode="floor"),
                               minlength=g.num_graphs)
    crow = torch.cat([per_graph.new_zeros(1), torch.cumsum(per_graph, 0)])
    return csr_tensor(crow, keys % rows, weight, rows)


def distinct_mean_pool(h: torch.Tensor, ids: torch.Tensor, batch: torch.Tensor,
                       num_graphs: int) -> torch.Tensor:
    """Per graph, the mean over its distinct ``ids`` of the mean state of the nodes with that
    id: a block repeated 24 times weighs as much as one that occurs once."""
    span = int(ids.max()) + 1 if len(ids) else 1
    keys, inverse = torch.unique(batch * span + ids, return_inverse=True)
    per_id = global_mean_pool(h, inverse, len(keys))
    return global_mean_pool(per_id, torch.div(keys, span, rounding_mode="floor"), num_graphs)


def normalised_adjacency(edge_index: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
    """GCNConv's Â = D^-1/2 (A + I) D^-1/2 as one CSR matrix whose rows are the targets: every
    self loop replaced by one of weight 1, repeated edges adding up, D the in-degrees. Built
    straight from the edge list (a stable sort by target), 10-20x faster than PyG's
    conversion and normalisation of a sparse tensor, with the same entries."""
    src, dst = edge_index
    keep = src != dst
    loops = torch.arange(n, device=src.device)
    src, dst = torch.cat([src[keep], loops]), torch.cat([dst[keep], loops])
    degree = torch.bincount(dst, minlength=n)  # also each row's entries in the CSR
    inv_sqrt = degree.to(dtype).pow(-0.5)
    order = torch.argsort(dst, stable=True)
    src, dst = src[order], dst[order]
    crow = torch.zeros(n + 1, dtype=torch.int64, device=src.device)
    crow[1:] = torch.cumsum(degree, 0)
    return csr_tensor(crow, src, inv_sqrt[dst] * inv_sqrt[src], n)


def _conv(kind: str, dim: int) -> nn.Module:
    if kind == "gcn":
        return GCNConv(dim, dim)
    if kind == "gat":
        return GATConv(dim, dim // 4, heads=4)
    if kind == "gin":
        return GINConv(nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim)))
    raise ValueError(f"unknown GNN kind {kind!r}; use one of {KINDS}")


class GraphEncoder(nn.Module):
    """GCN or GAT over the raw operator graph, with a family classifier head (baselines)."""

    def __init__(self, kind: str, num_ops: int, num_classes: int, dim: int = 512,
                 layers: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        self.gnn = GNN(kind, dim, layers, dropout, num_ids=num_ops)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, g: GraphBatch) -> torch.Tensor:
        return self.gnn.pool(g)


class NAREncoder(nn.Module):
    """The paper's encoder (Eq. 8): F(A) = F_m(Agg[F_s(Mss(A))]).

    ``motif`` is F_s (GCN over a motif's subgraph), ``context`` F_c (GCN over a motif's context
    graph; training only), ``macro`` F_m (GCN over the macro graph whose node features are the
    motif embeddings), ``head`` the family classifier f of Eq. 6.
    """

    def __init__(self, num_ops: int, num_classes: int, dim: int = 512, layers: int = 3,
                 dropout: float = 0.1, readout: str = "mean") -> None:
        super().__init__()
        self.motif = GNN("gcn", dim, layers, num_ids=num_ops)
        self.context = GNN("gcn", dim, layers, num_ids=num_ops)
        self.macro = GNN("gcn", dim, layers, dropout, in_dim=dim, readout=readout)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, macro: GraphBatch, motif_embeddings: torch.Tensor) -> torch.Tensor:
        """Macro graphs -> H_m, given the F_s embedding of every distinct motif."""
        return self.macro.pool(macro, motif_embeddings)


class GraphVAE(nn.Module):
    """arch2vec-style variational autoencoder: a GIN encoder (edges both ways, as arch2vec's
    A + A^T), a node-operator decoder and an inner-product edge decoder.

    Unsupervised: the graph embedding is the mean of the node posteriors' means, ``latent`` wide
    (``dim``, the GIN width, when 0).
    """

    def __init__(self, num_ops: int, dim: int = 512, layers: int = 3, dropout: float = 0.1,
                 latent: int = 0):
        super().__init__()
        latent = latent or dim
        self.gnn = GNN("gin", dim, layers, dropout, num_ids=num_ops)
        self.mu = nn.Linear(dim, latent)
        self.logvar = nn.Linear(dim, latent)
        self.ops = nn.Linear(latent, num_ops)

    def encode(self, g: GraphBatch) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.gnn(g.x, g.edge_index))
        return self.mu(h), self.logvar(h).clamp(-10, 10)

    def forward(self, g: GraphBatch) -> torch.Tensor:
        return global_mean_pool(self.encode(g)[0], g.batch, g.num_graphs)
