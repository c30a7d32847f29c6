"""Search: the workspace's architectures most similar to a query model.

The query is traced by the dataset's tracer and processed by the dataset's preprocessing (same
operator mapping, motif steps and splitter as the workspace's records). The records are then
ranked by ``method``: ``wl-metric+wl-fam`` (the default, the best ranking on benchmark v2's
``open`` and ``variants``: the bundled wl-metric encoder's cosine fused with wl-fam's),
``wl-fam`` (WL colour presence weighted by an idf over the catalogue's families), ``wl`` (WL
colour histograms, plain TF-IDF), or a learned encoder's embedding (the one that embedded the
workspace, else the bundled one) by cosine similarity, alone or fused with WL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from narbuild.errors import NarbuildError
from narbuild.preprocess.pipeline import dataset_names
from narbuild.retrieval.query import QueryGraph, WorkspaceGraphs, module_graph
from narbuild.retrieval.rankers import DEFAULT_METHOD, Ranker, ranker
from narbuild.tracing.workers import TraceOptions
from narbuild.workspace import Workspace, default_root

_INFO = ["record_id", "model_ids", "fine_label", "fine_labels", "coarse_label", "params", "flops",
         "motif_keys", "motif_ops"]


@dataclass
class Hit:
    """One search result: a record of the workspace and why it is close."""

    rank: int
    model_id: str
    model_ids: list[str]
    """Every model id whose graph collapsed into this record."""
    family: str
    """The record's family (the majority over its model ids)."""
    families: list[str]
    """Every family among its model ids, e.g. a language model shared by several VLMs."""
    coarse_label: str
    score: float
    """Cosine similarity of the embeddings, in [-1, 1]."""
    params: int | None
    flops: int | None
    record_id: str
    dataset: str
    shared_motifs: int
    """How many of the query's distinct motifs this record also has."""
    shared_examples: list[str]
    """The longest shared motifs, as operator sequences."""


@dataclass
class SearchResult:
    """The ranked hits, what the query looked like, and where the time went."""

    query: dict[str, Any]
    hits: list[Hit]
    searched: dict[str, int]
    """Records searched per dataset."""
    encoders: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    """The query as a processed record of each dataset searched (its macro graph and motifs),
    for pictures; not in :meth:`as_dict`."""

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("records")
        return out


@dataclass
class _Dataset:
    name: str
    steps: int
    splitter: str
    ranker: Ranker


def search(query: Any, example_inputs: Any = None, k: int = 10, dataset: str = "real",
           workspace: str | Path | Workspace | None = None, method: str = DEFAULT_METHOD,
           checkpoint: str | Path | None = None,
           on_progress: Callable[[str], None] | None = None,
           limits: TraceOptions | None = None) -> SearchResult:
    """Rank the workspace's records by similarity to ``query``.

    ``query`` is an ``nn.Module`` (traced with ``example_inputs``, or inputs inferred as
    ``narbuild trace --model`` does) or a spec string: a registry id (``timm:convnext_tiny``), a
    Hugging Face ``config.json`` path, ``hf:ORG/NAME`` (needs the Hub) or ``file.py:factory``;
    or a :class:`~narbuild.retrieval.query.QueryGraph` of such a spec, already started.
    ``dataset`` is ``real``, ``nas`` or ``all``. ``method`` is ``wl-metric+wl-fam`` (the
    default, best on benchmark v2's ``open`` and ``variants``: the wl-metric encoder's cosine
    and wl-fam's, weighted by :func:`narbuild.encoder.wl.fusion_weight`), ``wl-fam`` (WL colour
    presence weighted by an idf over the catalog's families; presence is blind to depth, so
    equal cosines are ordered by ``wl``'s), ``wl`` (WL colour histograms, plain TF-IDF,
    training-free), a learned method (``wl-metric``, ``nar``, ``gcn``, ...), or such a method
    fused with a WL one (``nar+wl-fam``). A learned method ranks by the workspace's embeddings
    of it; without them, by its bundled checkpoint's (or ``checkpoint``'s) vectors of the
    records, embedded on the first search and cached. ``checkpoint`` names the encoder if it
    is not where ``embed`` left it.
    ``on_progress`` hears about slow one-time steps (building a WL index, embedding records).
    A spec query is traced in an isolated worker under ``limits`` (time and memory; the trace
    defaults).
    A :class:`Searcher` answers many queries with its indexes loaded once.
    """
    searcher = Searcher(workspace, dataset, method, checkpoint, on_progress)
    return searcher.search(query, example_inputs, k, limits)


class Searcher:
    """Searches of one workspace, dataset scope and method, with the indexes (and the
    encoder) loaded on the first query and kept for the next ones: what a server holds."""

    def __init__(self, workspace: str | Path | Workspace | None = None, dataset: str = "real",
                 method: str = DEFAULT_METHOD, checkpoint: str | Path | None = None,
                 on_progress: Callable[[str], None] | None = None) -> None:
        self.ws = (workspace if isinstance(workspace, Workspace)
                   else Workspace(workspace or default_root()))
        self.dataset, self.method, self.checkpoint = dataset, method, checkpoint
        self.on_progress = on_progress
        self._datasets: list[_Dataset] | None = None
        self.graphs: WorkspaceGraphs | None = None
        """The workspace's graphs in memory, once :meth:`hold_graphs` was called."""

    def hold_graphs(self) -> None:
        """Keep the workspace's traced graphs in memory: a registry id then needs no table
        read (a server's many queries; one search reads only what it needs)."""
        self.graphs = WorkspaceGraphs(self.ws)

    def search(self, query: Any, example_inputs: Any = None, k: int = 10,
               limits: TraceOptions | None = None) -> SearchResult:
        """The ``k`` records closest to ``query`` (see :func:`search`)."""
        if k < 1:
            raise NarbuildError(f"k must be at least 1, got {k}", "ask for -k 10, say")
        clock = _Clock()
        pending = (query if isinstance(query, QueryGraph)
                   else QueryGraph(self.ws, query, limits, self.graphs) if isinstance(query, str)
                   else None)  # a trace starts now and runs while the indexes load
        try:
            self._open_datasets(build=False)
        except BaseException:
            if pending is not None:
                pending.cancel()
            raise
        clock.lap("index")
        graph, origin = (pending.result() if pending is not None
                         else (module_graph(query, example_inputs), "traced"))
        clock.lap("trace")
        datasets = self._open_datasets(build=True)
        clock.lap("index")
        hits: list[tuple[float, int, _Dataset, dict[str, Any]]] = []
        summary: dict[str, Any] = {}
        records = {}
        for ds in datasets:
            record = records[ds.name] = _process(graph, ds)
            scores, rows = ds.ranker.rank(record, k)
            hits += [(float(s), int(r), ds, record) for s, r in zip(scores, rows)]
            summary = summary or _query_summary(graph, origin, record)
        clock.lap("rank")
        hits.sort(key=lambda h: -h[0])
        result = SearchResult(summary, _annotate(self.ws, hits[:k]),
                              {d.name: len(d.ranker.ids) for d in datasets},
                              {d.name: d.ranker.description for d in datasets})
        clock.lap("annotate")
        result.seconds, result.records = clock.laps, records
        return result

    def _open_datasets(self, build: bool) -> list[_Dataset]:
        """The datasets searched, with their rankers open; with ``build`` False, only what is
        cached (a slow first index build waits until the query is known to trace)."""
        if self._datasets is None:
            self._datasets = [_load_dataset(self.ws, name, self.method, self.checkpoint,
                                            self.on_progress)
                              for name in dataset_names(self.dataset)]
        for ds in self._datasets:
            ds.ranker.open(build)
        return self._datasets


def _load_dataset(ws: Workspace, name: str, method: str, checkpoint: str | Path | None,
                  on_progress: Callable[[str], None] | None) -> _Dataset:
    """The preprocessing the dataset's records went through, and its ranker (not open yet)."""
    processed = ws.table("processed").read(["steps", "splitter"], subdir=name)
    if not processed.num_rows:
        raise NarbuildError(f"the workspace has no processed {name} records",
                            "run `narbuild preprocess` first")
    steps, splitter = int(processed["steps"][0].as_py()), processed["splitter"][0].as_py()
    return _Dataset(name, steps, splitter, ranker(ws, name, method, checkpoint, on_progress))


def _process(graph: dict[str, Any], ds: _Dataset) -> dict[str, Any]:
    """The query as a processed record of ``ds`` (same steps and splitter as its records)."""
    from narbuild.preprocess.pipeline import process_graph

    result = process_graph(graph["nodes"], np.asarray(graph["edge_src"]),
                           np.asarray(graph["edge_dst"]), ds.steps, ds.splitter)
    return {**result, "record_id": f"query:{result['graph_hash'][:16]}", "dataset": ds.name,
            "model_id": graph["model_id"], "model_ids": [graph["model_id"]],
            "fine_label": "query", "split": "test", "params": graph["params"],
            "flops": graph["flops"]}


def _query_summary(graph: dict[str, Any], origin: str, record: dict[str, Any]) -> dict[str, Any]:
    return {"model_id": graph["model_id"], "origin": origin, "nodes": len(record["op_ids"]),
            "motifs": len(record["macro_motif"]), "distinct_motifs": len(record["motif_keys"]),
            "coarse_label": record["coarse_label"], "params": graph["params"],
            "flops": graph["flops"]}


def _annotate(ws: Workspace, hits: list[tuple[float, int, _Dataset, dict[str, Any]]]
              ) -> list[Hit]:
    """Hits with their records' names, labels, sizes and the motifs they share with the query."""
    out: list[Hit] = []
    tables: dict[str, tuple[Any, dict[str, int]]] = {}  # dataset -> (records, row of each id)
    for rank, (score, row, ds, query) in enumerate(hits, start=1):
        if ds.name not in tables:
            table = ws.table("processed").read(_INFO, subdir=ds.name)
            tables[ds.name] = table, {r: i for i, r in enumerate(table["record_id"].to_pylist())}
        table, position = tables[ds.name]
        record_id = ds.ranker.ids[row]
        if record_id not in position:
            raise NarbuildError(f"record {record_id} has an embedding but no processed row",
                                "re-run `narbuild embed` after `narbuild preprocess`")
        rec = table.slice(position[record_id], 1).to_pylist()[0]
        shared = _shared_motifs(query, rec["motif_keys"], rec["motif_ops"])
        out.append(Hit(rank, rec["model_ids"][0], rec["model_ids"], rec["fine_label"],
                       sorted(set(rec["fine_labels"])), rec["coarse_label"], round(score, 4),
                       rec["params"], rec["flops"], record_id, ds.name, len(shared), shared[:3]))
    return out


def _shared_motifs(query: dict[str, Any], keys: list[str], ops: list[str]) -> list[str]:
    """Motifs of the query that the record has too, longest first (as operator sequences)."""
    own = set(query["motif_keys"])
    shared = {key: seq for key, seq in zip(keys, ops) if key in own}
    return sorted(shared.values(), key=lambda seq: (-len(seq.split()), seq))


class _Clock:
    """Seconds spent per step, accumulated over repeated laps of the same name."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(self.laps.get(name, 0.0) + now - self._last, 4)
        self._last = now
