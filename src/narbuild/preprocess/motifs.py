"""Motifs (section 3.2), the macro graph (3.3), context graphs (3.4) and the Table-2 splitters.

Motif sampling, as implemented here:

1. Encode every node by ``s`` steps of neighbour encoding (:func:`~.encode.encode`, Eq. 2).
2. Lay the nodes out as a canonical sequence (:func:`~.encode.node_order`): the encoded sequence
   ``C^s`` of the paper.
3. Find the frequent repeated subsequences by pair merging (byte-pair encoding / Re-Pair): merge
   the most frequent adjacent pair of symbols (ties broken by the pair's hash, the same in every
   graph) while some pair occurs at least twice. A symbol never merges with a copy of itself, and
   a symbol of at least ``min_repeat`` nodes that occurs twice in a row is *closed*: it is the unit
   of a stack (a ResNet bottleneck, a transformer layer), not part of a bigger motif. Nodes left
   unmerged are motifs of one node.

Each final symbol is one motif instance (a macro node). Its **key** is a hash of the encoded
labels it covers, in order, and of its length (:func:`segment_keys`), so two graphs that contain
the same block get the same key, whatever the merge order that built it. Macro nodes are joined
when an edge of the graph runs between their nodes (the paper's "motifs that share an edge are
connected": our motifs partition the nodes, so a shared edge is an edge across two of them).

The splitters of the paper's Table 2 cut the same sequence differently: ``nodes:N`` (N nodes per
motif), ``count:K`` (K motifs of equal size), ``random:A-B`` (sizes drawn in [A, B], seeded).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from narbuild.errors import NarbuildError
from narbuild.hashing import _U, mix64
from narbuild.preprocess.encode import encode, node_order

_P = _U(0x100000001B3)  # odd multiplier of the polynomial content hash
_PAIR = _U(0xD6E8FEB86659FD93)  # odd multiplier: pair id = a * _PAIR + b (wrapping)
DEFAULT_STEPS = 2
DEFAULT_MIN_REPEAT = 4
_SPLITTER = re.compile(r"^(motif|nodes:\d+|count:\d+|random:\d+-\d+)$")


@dataclass
class MotifSplit:
    """A graph cut into motif instances (macro nodes)."""

    order: np.ndarray
    """The node sequence (node indices in sequence order)."""
    node_motif: np.ndarray
    """Per node: the macro node (motif instance) it belongs to, int32."""
    keys: list[str]
    """Per macro node: its motif key (16 hex characters)."""
    sizes: np.ndarray
    """Per macro node: its number of nodes."""
    macro_src: np.ndarray
    macro_dst: np.ndarray

    @property
    def num_motifs(self) -> int:
        return len(self.keys)


def check_splitter(splitter: str) -> str:
    """Validate a splitter spec (``motif``, ``nodes:N``, ``count:K``, ``random:A-B``)."""
    if not _SPLITTER.match(splitter):
        raise NarbuildError(f"unknown splitter {splitter!r}",
                            "use motif, nodes:N, count:K or random:A-B (e.g. random:8-32)")
    kind, _, arg = splitter.partition(":")
    numbers = [int(x) for x in re.findall(r"\d+", arg)]
    if any(x < 1 for x in numbers) or (kind == "random" and numbers[0] > numbers[1]):
        raise NarbuildError(f"splitter {splitter!r} needs positive sizes with A <= B",
                            "e.g. nodes:16, count:32, random:8-32")
    return splitter


def _powers(n: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.cumprod(np.r_[_U(1), np.full(n, _P, dtype=_U)], dtype=_U)


def segment_keys(leaf: np.ndarray, sizes: np.ndarray) -> list[str]:
    """Key of each consecutive segment of ``leaf`` labels: a hash of its labels in order and of
    its length (``sum l_j P^(end-1-j)``, mixed), as 16 hex characters."""
    keys = np.empty(len(sizes), dtype=_U)
    bounds = np.r_[0, np.cumsum(sizes)]
    pw = _powers(int(sizes.max()) if len(sizes) else 0)
    with np.errstate(over="ignore"):
        for i in np.flatnonzero(sizes > 1):  # singletons below, vectorised
            seg = leaf[bounds[i]:bounds[i + 1]]
            keys[i] = np.sum(seg * pw[len(seg) - 1::-1][: len(seg)], dtype=_U)
        ones = sizes == 1
        keys[ones] = leaf[bounds[:-1][ones]]
        final = mix64(keys ^ mix64(sizes.astype(_U), 11), 12)
    return [f"{k:016x}" for k in final.tolist()]


def _pairs(key: np.ndarray, closed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hash of each adjacent pair, and whether the pair may merge."""
    a, b = key[:-1], key[1:]
    return a * _PAIR + b, (a != b) & ~closed[:-1] & ~closed[1:]


def repeat_sizes(leaf: np.ndarray, min_repeat: int = DEFAULT_MIN_REPEAT) -> np.ndarray:
    """Segment sizes of ``leaf`` by pair merging of frequent repeated subsequences (see module).

    Each round counts the pairs once and merges every pair that ties for the top count, in the
    order of their hashes (a pair whose occurrences an earlier merge of the round broke up below
    two waits for the next count)."""
    key, size = leaf.copy(), np.ones(len(leaf), dtype=np.int64)
    closed = np.zeros(len(leaf), dtype=bool)
    pw = _powers(len(leaf))
    while len(key) > 1:
        pid, ok = _pairs(key, closed)
        uniq, counts = np.unique(pid[ok], return_counts=True)
        if not len(counts) or counts.max() < 2:
            break
        changed = False
        for chosen in uniq[counts == counts.max()]:
            if changed:
                pid, ok = _pairs(key, closed)
            pos = np.flatnonzero(ok & (pid == chosen))
            if len(pos) < 2:
                changed = False
                continue
            key[pos] = key[pos] * pw[size[pos + 1]] + key[pos + 1]
            size[pos] += size[pos + 1]
            new_key, new_size = key[pos[0]], size[pos[0]]
            keep = np.ones(len(key), dtype=bool)
            keep[pos + 1] = False
            key, size, closed = key[keep], size[keep], closed[keep]
            if new_size >= min_repeat:
                where = np.flatnonzero(key == new_key)
                if np.any(where[1:] - where[:-1] == 1):
                    closed[where] = True
            changed = True
    return size


def fixed_sizes(n: int, splitter: str, seed: int = 0) -> np.ndarray:
    """Segment sizes of the Table-2 baselines over a sequence of ``n`` nodes."""
    kind, _, arg = check_splitter(splitter).partition(":")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if kind == "nodes":
        size = int(arg)
        return np.r_[np.full(n // size, size), [n % size] if n % size else []].astype(np.int64)
    if kind == "count":
        k = min(int(arg), n)
        return np.diff(np.linspace(0, n, k + 1).round().astype(np.int64))
    lo, hi = (int(x) for x in arg.split("-"))
    rng = np.random.default_rng(seed)
    draws = rng.integers(lo, hi + 1, size=n // lo + 1)
    ends = np.cumsum(draws)
    cut = int(np.searchsorted(ends, n))
    sizes = draws[: cut + 1].copy()
    sizes[-1] -= ends[cut] - n
    return sizes[sizes > 0].astype(np.int64)


def split_graph(op_names: Sequence[str], src: np.ndarray, dst: np.ndarray,
                steps: int = DEFAULT_STEPS, splitter: str = "motif", seed: int = 0,
                min_repeat: int = DEFAULT_MIN_REPEAT) -> MotifSplit:
    """Cut a cleaned graph into motifs and build its macro graph (see the module docstring)."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    labels = encode(op_names, src, dst, steps)
    order = node_order(labels, src, dst)
    leaf = labels[order]
    if splitter == "motif":
        sizes = repeat_sizes(leaf, min_repeat)
    else:
        sizes = fixed_sizes(len(leaf), splitter, seed)
    node_motif = np.empty(len(leaf), dtype=np.int32)
    node_motif[order] = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
    macro_src, macro_dst = macro_edges(node_motif, src, dst, len(sizes))
    return MotifSplit(order, node_motif, segment_keys(leaf, sizes), sizes, macro_src, macro_dst)


def macro_edges(node_motif: np.ndarray, src: np.ndarray, dst: np.ndarray, num_motifs: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Macro-graph edges: motif a -> motif b when some edge of the graph runs from a to b."""
    a, b = node_motif[src].astype(np.int64), node_motif[dst].astype(np.int64)
    n = max(num_motifs, 1)
    pairs = np.unique((a * n + b)[a != b])
    return (pairs // n).astype(np.int32), (pairs % n).astype(np.int32)


def context_graph(node_motif: np.ndarray, src: np.ndarray, dst: np.ndarray, motif: int,
                  hops: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The context graph of one motif instance (section 3.4): its nodes and their ``hops``-hop
    neighbours (either direction). Returns ``(node indices, src, dst)`` renumbered over those
    nodes. Not stored in the table: it is this cheap to derive from ``node_motif`` and the edges."""
    src, dst = np.asarray(src), np.asarray(dst)
    inside = np.asarray(node_motif) == motif
    for _ in range(hops):
        grow = inside.copy()
        grow[dst[inside[src]]] = True
        grow[src[inside[dst]]] = True
        inside = grow
    nodes = np.flatnonzero(inside)
    keep = inside[src] & inside[dst]
    index = np.cumsum(inside) - 1
    return nodes, index[src[keep]].astype(np.int32), index[dst[keep]].astype(np.int32)
