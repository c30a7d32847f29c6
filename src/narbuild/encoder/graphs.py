"""A set of small graphs held as flat tensors, batched by index on any device.

PyG's ``Batch.from_data_list`` collates Python objects one graph at a time; at tens of thousands of
graphs per epoch that dominates training. A :class:`GraphStore` keeps every graph's node features
and edges in a few flat tensors with offsets, so a batch is a handful of vectorised gathers that
run wherever the store lives (CPU or GPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class GraphBatch:
    """A disjoint union of graphs, in torch_geometric's layout."""

    x: torch.Tensor
    """Node feature per node: an integer id (operator or motif) per node."""
    edge_index: torch.Tensor
    """``[2, E]`` edges over the batch's nodes."""
    batch: torch.Tensor
    """Graph index (0..num_graphs-1) of every node."""
    num_graphs: int


@dataclass
class GraphStore:
    """Graphs ``0..n-1``: node ids ``x[node_ptr[g]:node_ptr[g+1]]`` and edges (local indices)
    ``src/dst[edge_ptr[g]:edge_ptr[g+1]]``."""

    x: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor
    node_ptr: torch.Tensor
    edge_ptr: torch.Tensor

    @classmethod
    def from_lists(cls, xs: Sequence[np.ndarray], srcs: Sequence[np.ndarray],
                   dsts: Sequence[np.ndarray]) -> GraphStore:
        """A store from per-graph node ids and local edge lists."""
        def ptr(parts: Sequence[np.ndarray]) -> torch.Tensor:
            return torch.from_numpy(np.concatenate([[0], np.cumsum([len(p) for p in parts])]))

        def cat(parts: Sequence[np.ndarray]) -> torch.Tensor:
            return torch.from_numpy(np.concatenate(parts).astype(np.int64) if len(parts)
                                    else np.zeros(0, dtype=np.int64))

        return cls(cat(xs), cat(srcs), cat(dsts), ptr(xs), ptr(srcs))

    def __len__(self) -> int:
        return len(self.node_ptr) - 1

    @property
    def num_nodes(self) -> torch.Tensor:
        return self.node_ptr[1:] - self.node_ptr[:-1]

    def to(self, device: torch.device | str) -> GraphStore:
        return GraphStore(*(t.to(device) for t in (self.x, self.src, self.dst, self.node_ptr,
                                                     self.edge_ptr)))

    def batch(self, ids: torch.Tensor | Sequence[int], undirected: bool = True) -> GraphBatch:
        """The graphs ``ids`` as one :class:`GraphBatch` (edges both ways when ``undirected``)."""
        dev = self.x.device
        ids = torch.as_tensor(ids, dtype=torch.long, device=dev)
        nodes, node_graph, node_base = ranges(self.node_ptr, ids)
        edges, edge_graph, _ = ranges(self.edge_ptr, ids)
        shift = node_base[edge_graph]
        src, dst = self.src[edges] + shift, self.dst[edges] + shift
        if undirected:
            src, dst = torch.cat([src, dst]), torch.cat([dst, src])
        return GraphBatch(self.x[nodes], torch.stack([src, dst]), node_graph, len(ids))


def ranges(ptr: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                            torch.Tensor]:
    """Concatenated ``ptr[i]..ptr[i+1]`` for each ``i`` in ``ids``: (positions, owner index in
    ``ids`` per position, start of each owner's run in the output)."""
    starts, sizes = ptr[ids], ptr[ids + 1] - ptr[ids]
    owner = torch.repeat_interleave(torch.arange(len(ids), device=ptr.device), sizes)
    out_start = torch.cumsum(sizes, 0) - sizes
    positions = starts[owner] + torch.arange(len(owner), device=ptr.device) - out_start[owner]
    return positions, owner, out_start
