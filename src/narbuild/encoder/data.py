"""What the encoders read: the processed records of one dataset as graph stores.

* ``raw``: each record's cleaned operator graph (for GCN, GAT and the VAE baselines);
* ``motifs``: every distinct motif (by key, across all records) as a subgraph, and ``contexts``:
  the context graph of one instance of it (its nodes plus their 1-hop neighbours, section 3.4);
* ``macro``: each record's macro graph, whose node ids index ``motifs`` (section 3.3).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from narbuild.encoder.graphs import GraphStore
from narbuild.errors import NarbuildError
from narbuild.preprocess.motifs import context_graph
from narbuild.preprocess.pipeline import flat_lists
from narbuild.preprocess.vocab import VOCAB
from narbuild.schemas import PROCESSED
from narbuild.workspace import Workspace

NUM_OPS = len(VOCAB)
"""Operator ids are ``0 .. NUM_OPS-1`` (unknown, the published 89, narbuild's extras)."""

COLUMNS = ["record_id", "dataset", "model_id", "model_ids", "source", "fine_label", "fine_labels",
           "coarse_label", "split", "graph_hash",
           "op_ids", "edge_src", "edge_dst", "node_motif", "macro_motif", "macro_edge_src",
           "macro_edge_dst", "motif_keys", "motif_ops", "params", "flops"]


@dataclass
class Records:
    """The processed records of one dataset, in table order."""

    table: pa.Table
    record_ids: list[str]
    labels: np.ndarray
    """Fine label per record, as an index into ``label_names``."""
    label_names: list[str]
    split: np.ndarray
    """``'train'`` / ``'test'`` per record."""

    def __len__(self) -> int:
        return len(self.record_ids)

    @property
    def dataset(self) -> str:
        """``real`` or ``nas`` (empty when there are no records)."""
        return self.table["dataset"][0].as_py() if len(self) else ""

    @property
    def train(self) -> np.ndarray:
        return np.flatnonzero(self.split == "train")

    @property
    def test(self) -> np.ndarray:
        return np.flatnonzero(self.split == "test")


def load_datasets(ws: Workspace, names: Sequence[str],
                  skip_missing: bool = True) -> dict[str, Records]:
    """The records of each dataset in ``names`` (real | nas), reading only that dataset's part
    of the processed table and the columns the encoders use. A dataset with no records is
    skipped (``skip_missing``) or an error; at least one must have records."""
    processed = ws.table("processed")
    if not processed.exists():
        processed.read()  # raises the usual "no processed table yet" error
    found: dict[str, Records] = {}
    for name in names:  # preprocess writes each dataset into its own sub-folder
        rows = (processed.read(COLUMNS, subdir=name) if processed.parts(name)
                else pa.table({c: [] for c in COLUMNS}))
        if rows.num_rows:
            found[name] = records_of(rows.sort_by("record_id"))
        elif not skip_missing:
            raise NarbuildError(f"the processed table has no {name!r} records",
                                "run `narbuild preprocess` (and `narbuild gen-nas` for nas) "
                                "first")
    if not found:
        raise NarbuildError("the processed table has no records of "
                            f"{' or '.join(names)}", "run `narbuild preprocess` first")
    return found


def load_records(ws: Workspace, dataset: str) -> Records:
    """The ``dataset`` (real | nas) records of the workspace's processed table."""
    return load_datasets(ws, [dataset], skip_missing=False)[dataset]


def data_hash(records: Records) -> str:
    """16 hex digits of sha256 over (record id, family, split) of every record, in table order:
    names the data behind a retrieval figure."""
    # the id is written twice: the hash in MODEL_CARD.md was computed from this exact layout
    lines = [f"{r}:{r}:{f}:{s}" for r, f, s in zip(
        records.record_ids, records.table["fine_label"].to_pylist(), records.split)]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def validation_split(train: np.ndarray, labels: np.ndarray, seed: int = 0,
                     share: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, validation queries) cut from the training rows ``train``: ``share`` of each
    family with at least 3 training records (at least 1, seeded) become validation queries.
    Settings are chosen on them, never on the test queries."""
    rng, held = np.random.default_rng(seed), []
    for family in np.unique(labels[train]):
        members = train[labels[train] == family]
        if len(members) >= 3:
            held.extend(rng.choice(members, max(1, round(share * len(members))), replace=False))
    held_rows = np.sort(np.array(held, dtype=np.int64))
    return np.setdiff1d(train, held_rows), held_rows


def records_from_rows(rows: Sequence[dict[str, Any]]) -> Records:
    """Records of rows shaped like the processed table (lists may be numpy arrays), e.g. a
    search query processed outside any workspace."""
    schema = pa.schema([PROCESSED.field(c) for c in COLUMNS])
    plain = [{c: (r.get(c).tolist() if isinstance(r.get(c), np.ndarray) else r.get(c))
              for c in COLUMNS} for r in rows]
    return records_of(pa.Table.from_pylist(plain, schema=schema))


def records_of(table: pa.Table) -> Records:
    """Records of a table shaped like the processed table's encoder columns, in its order."""
    fine = table["fine_label"].to_pylist()
    names = sorted(set(fine))
    index = {n: i for i, n in enumerate(names)}
    return Records(table, table["record_id"].to_pylist(), np.array([index[f] for f in fine]),
                   names, np.array(table["split"].to_pylist()))


def raw_graphs(records: Records) -> GraphStore:
    """Every record's operator graph (node id = operator id)."""
    t = records.table
    return GraphStore.from_lists(_arrays(t["op_ids"]), _arrays(t["edge_src"]),
                                 _arrays(t["edge_dst"]))


@dataclass
class MotifData:
    """Distinct motifs, one context graph each, and the macro graphs over them."""

    keys: list[str]
    ops: list[str]
    """Readable operator sequence of each distinct motif."""
    motifs: GraphStore
    macro: GraphStore
    first: list[tuple[int, int]] = field(default_factory=list)
    """(record, motif instance) where each distinct motif first occurs."""
    records: Records | None = None
    _contexts: GraphStore | None = None

    @property
    def contexts(self) -> GraphStore:
        """The context graph of each distinct motif's first instance (training only: built on
        first use, so embedding never pays for it)."""
        if self._contexts is None:
            parts: tuple[list, list, list] = ([], [], [])
            t = self.records.table
            columns = [_arrays(t[c]) for c in ("op_ids", "edge_src", "edge_dst", "node_motif")]
            for r, instance in self.first:
                op, src, dst, node_motif = (c[r] for c in columns)
                _append(parts, op, *context_graph(node_motif, src, dst, instance, hops=1))
            self._contexts = GraphStore.from_lists(*parts)
        return self._contexts


def motif_graphs(records: Records) -> MotifData:
    """Distinct motifs of ``records`` (the first instance of each key) and every record's macro
    graph with node id = distinct motif index; context graphs follow on first use.

    Vectorised over all records at once: the keys are numbered in order of first appearance,
    and each distinct motif's first instance is cut out of the flat node and edge arrays."""
    t = records.table
    ops, node_ptr = flat_lists(t["op_ids"])
    node_motif, _ = flat_lists(t["node_motif"])
    macro_motif, macro_ptr = flat_lists(t["macro_motif"])
    src, edge_ptr = flat_lists(t["edge_src"])
    dst, _ = flat_lists(t["edge_dst"])
    key_column = t["motif_keys"].combine_chunks()
    key_ptr = key_column.offsets.to_numpy().astype(np.int64)
    encoded = key_column.flatten().dictionary_encode()
    codes = encoded.indices.to_numpy().astype(np.int64)
    keys = encoded.dictionary.to_pylist()
    # macro node -> distinct motif; the first macro node with a key is its first instance
    macro_record = _owner(macro_ptr)
    macro_x = codes[key_ptr[macro_record] - key_ptr[0] + macro_motif]
    instance = _first_of_each(macro_x, len(keys))
    motif_ops = t["motif_ops"].combine_chunks().flatten()
    first_key_pos = _first_of_each(codes, len(keys))
    # the nodes and edges of each first instance, renumbered within it
    motif_of_macro = np.full(len(macro_x), -1, dtype=np.int64)
    motif_of_macro[instance] = np.arange(len(keys))
    node_record = _owner(node_ptr)
    node_key = motif_of_macro[macro_ptr[node_record] + node_motif]
    chosen = np.flatnonzero(node_key >= 0)
    chosen = chosen[np.argsort(node_key[chosen], kind="stable")]
    node_count = np.bincount(node_key[chosen], minlength=len(keys))
    local = np.zeros(len(ops), dtype=np.int64)
    local[chosen] = np.arange(len(chosen)) - np.repeat(np.cumsum(node_count) - node_count,
                                                       node_count)
    base = node_ptr[_owner(edge_ptr)]
    src_key, dst_key = node_key[src + base], node_key[dst + base]
    edges = np.flatnonzero((src_key >= 0) & (src_key == dst_key))
    edges = edges[np.argsort(src_key[edges], kind="stable")]
    edge_count = np.bincount(src_key[edges], minlength=len(keys))
    motifs = GraphStore(*(torch.from_numpy(a) for a in (
        ops[chosen], local[src[edges] + base[edges]], local[dst[edges] + base[edges]],
        _ptr(node_count), _ptr(edge_count))))
    macro_src, macro_edge_ptr = flat_lists(t["macro_edge_src"])
    macro_dst, _ = flat_lists(t["macro_edge_dst"])
    macro = GraphStore(*(torch.from_numpy(a) for a in (macro_x, macro_src, macro_dst, macro_ptr,
                                                       macro_edge_ptr)))
    first = list(zip(macro_record[instance].tolist(),
                     (instance - macro_ptr[macro_record[instance]]).tolist()))
    return MotifData(keys, motif_ops.take(first_key_pos).to_pylist(), motifs, macro, first,
                     records)


def _owner(ptr: np.ndarray) -> np.ndarray:
    """The row of every flat position, from row offsets."""
    return np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))


def _first_of_each(codes: np.ndarray, count: int) -> np.ndarray:
    """The first position of each code ``0..count-1`` in ``codes``."""
    first = np.full(count, len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))
    return first


def _ptr(counts: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


@dataclass
class Inputs:
    """One dataset's records and, built on first use, the graph stores each method reads."""

    records: Records
    _cache: dict[Any, Any] = field(default_factory=dict)
    io: Any = None
    """The ``nas_io`` table lined up with these records
    (:class:`narbuild.nasio.arch2vec.IOData`), for the methods that learn from it."""

    @property
    def raw(self) -> GraphStore:
        if "raw" not in self._cache:
            self._cache["raw"] = raw_graphs(self.records)
        return self._cache["raw"]

    @property
    def motifs(self) -> MotifData:
        if "motifs" not in self._cache:
            self._cache["motifs"] = motif_graphs(self.records)
        return self._cache["motifs"]

    def wl_counts(self, rounds: int) -> tuple[Any, np.ndarray]:
        """:func:`narbuild.encoder.wl.wl_counts` of the raw graphs (kept: the WL bags and
        wl-metric's training and embedding read the same counts; callers copy before
        changing them)."""
        from narbuild.encoder.wl import wl_counts

        if ("wl", rounds) not in self._cache:
            self._cache[("wl", rounds)] = wl_counts(self.raw, rounds)
        return self._cache[("wl", rounds)]


def _append(parts: tuple[list, list, list], op: np.ndarray, nodes: np.ndarray, src: np.ndarray,
            dst: np.ndarray) -> None:
    parts[0].append(op[nodes])
    parts[1].append(src)
    parts[2].append(dst)


def _arrays(column: pa.ChunkedArray) -> Sequence[np.ndarray]:
    """A list<int> column as one numpy array per row (views of the flat values)."""
    flat, offsets = flat_lists(column)
    return [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
