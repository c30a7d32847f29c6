"""``narbuild preprocess``: the ``graphs`` (and ``nas``) tables into the ``processed`` table.

Per dataset: read the ok rows (error and empty rows are counted, never processed); map every
operator once over the whole catalog (a dictionary of a few hundred names); process each distinct
traced graph once, in a pool of worker processes (clean, hash, motifs, macro graph, coarse label);
collapse graphs with the same cleaned-graph hash into one record that keeps every model id; label;
split; write the dataset's part of ``processed``, replacing the previous one.
"""

from __future__ import annotations

import datetime as dt
import functools
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from narbuild import pool, schemas
from narbuild._version import __version__
from narbuild.errors import NarbuildError, one_line
from narbuild.preprocess.encode import graph_hash
from narbuild.preprocess.labels import coarse_label, fine_label
from narbuild.preprocess.motifs import DEFAULT_STEPS, check_splitter, split_graph
from narbuild.preprocess.operators import REMOVED, normalise_op, op_id, remove_nodes
from narbuild.preprocess.split import stratified_split
from narbuild.preprocess.vocab import FIRST_EXTRA_ID
from narbuild.workspace import Workspace

DATASETS = ("real", "nas")


def dataset_names(dataset: str) -> list[str]:
    """``real``, ``nas`` or ``all`` (both) as the list of dataset names; a clear error else."""
    if dataset == "all":
        return list(DATASETS)
    if dataset not in DATASETS:
        raise NarbuildError(f"unknown dataset {dataset!r}", "use real, nas or all")
    return [dataset]

_GRAPH_COLUMNS = ["model_id", "status", "nodes", "edge_src", "edge_dst", "graph_hash", "flops",
                  "params"]
_META_COLUMNS = ["model_id", "source", "name", "task", "module", "model_type"]


@dataclass
class PreprocessSummary:
    """What one ``preprocess`` run did, per dataset (see :meth:`as_dict`)."""

    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: int = DEFAULT_STEPS
    splitter: str = "motif"
    seed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- one graph


_NAMES: list[str] = []


def _init_worker(names: list[str]) -> None:
    global _NAMES
    _NAMES = names


def process_codes(codes: np.ndarray, src: np.ndarray, dst: np.ndarray, steps: int,
                  splitter: str, seed: int, names: list[str] | None = None) -> dict[str, Any]:
    """Process one traced graph whose nodes are given as codes into ``names`` (normalised
    operator names): remove, hash, cut into motifs, build the macro graph, read the coarse label.
    """
    names = _NAMES if names is None else names
    drop = np.fromiter((names[c] in REMOVED for c in codes), dtype=bool, count=len(codes))
    kept, s, d = remove_nodes(len(codes), src, dst, drop)
    codes = np.asarray(codes)[kept].astype(np.int32)
    op_names = [names[c] for c in codes]
    ghash = graph_hash(op_names, s, d)
    cut = split_graph(op_names, s, d, steps, splitter, seed=int(ghash[:8], 16) ^ seed)
    distinct: dict[str, int] = {}
    macro_motif = np.fromiter((distinct.setdefault(k, len(distinct)) for k in cut.keys),
                              dtype=np.int32, count=cut.num_motifs)
    first = np.unique(macro_motif, return_index=True)[1]
    seq_names = np.asarray(op_names, dtype=object)[cut.order] if op_names else np.empty(0, object)
    bounds = np.r_[0, np.cumsum(cut.sizes)]
    motif_ops = [" ".join(seq_names[bounds[i]:bounds[i + 1]]) for i in first]
    return {
        "codes": codes, "edge_src": s, "edge_dst": d, "graph_hash": ghash,
        "node_motif": cut.node_motif, "macro_motif": macro_motif,
        "macro_edge_src": cut.macro_src, "macro_edge_dst": cut.macro_dst,
        "motif_keys": list(distinct), "motif_ops": motif_ops,
        "coarse_label": coarse_label(op_names, s, d), "removed": int(drop.sum()),
    }


def process_graph(nodes: list[str], src: np.ndarray, dst: np.ndarray, steps: int = DEFAULT_STEPS,
                  splitter: str = "motif", seed: int = 0) -> dict[str, Any]:
    """Process one traced graph given by its raw operator names, as :func:`preprocess` does for
    every graph of a workspace; adds ``op_names`` and ``op_ids`` (vocabulary ids) per node."""
    names = sorted({normalise_op(n) for n in nodes})
    code_of = {n: i for i, n in enumerate(names)}
    codes = np.array([code_of[normalise_op(n)] for n in nodes], dtype=np.int32)
    result = process_codes(codes, np.asarray(src, np.int64), np.asarray(dst, np.int64), steps,
                           splitter, seed, names)
    result["op_names"] = [names[c] for c in result["codes"]]
    result["op_ids"] = np.array([op_id(n) for n in result["op_names"]], dtype=np.int32)
    return result


def _process_task(task: tuple) -> tuple[int, dict[str, Any]]:
    index, codes, src, dst, steps, splitter, seed = task
    return index, process_codes(codes, src, dst, steps, splitter, seed)


# --------------------------------------------------------------------------- reading


def _read(ws: Workspace, dataset: str) -> tuple[pa.Table, dict[str, dict[str, Any]]]:
    """The ok-or-not rows of the dataset's input table, and metadata per model id."""
    if dataset == "real":
        graphs = ws.table("graphs").read(_GRAPH_COLUMNS)
        manifest = ws.table("manifest")
        meta: dict[str, dict[str, Any]] = {}
        if manifest.exists():
            for row in manifest.read(_META_COLUMNS).to_pylist():
                meta[row["model_id"]] = row
            _add_hub_configs(manifest, meta)
        return graphs, meta
    nas = ws.table("nas").read(_GRAPH_COLUMNS + ["genotype", "cluster"])
    meta = {m: {"model_id": m, "source": "gen-nas", "task": "image-classification",
                "cluster": c, "genotype": g}
            for m, c, g in zip(nas.column("model_id").to_pylist(),
                               nas.column("cluster").to_pylist(),
                               nas.column("genotype").to_pylist())}
    return nas.drop_columns(["genotype", "cluster"]), meta


def _add_hub_configs(manifest, meta: dict[str, dict[str, Any]]) -> None:
    """Hub rows without a model_type: keep their config (a timm config names its architecture)."""
    wanted = [m for m, r in meta.items()
              if r.get("source") == "hf-hub" and not r.get("model_type") and not r.get("module")]
    if not wanted:
        return
    table = manifest.read(["model_id", "config"])
    mask = pc.is_in(table.column("model_id"), pa.array(wanted))
    for row in table.filter(mask).to_pylist():
        meta[row["model_id"]]["config"] = row["config"]


def _operator_codes(nodes: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every node of every row as a code into a list of normalised names, with row offsets."""
    arr = nodes.combine_chunks()
    offsets = arr.offsets.to_numpy().astype(np.int64)
    flat = pc.dictionary_encode(arr.flatten())
    raw = flat.dictionary.to_pylist()
    names = sorted({normalise_op(r) for r in raw})
    code_of = {n: i for i, n in enumerate(names)}
    remap = np.array([code_of[normalise_op(r)] for r in raw], dtype=np.int32)
    codes = remap[flat.indices.to_numpy()] if len(raw) else np.zeros(0, np.int32)
    return codes, offsets - offsets[0], names


def flat_lists(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A list<int> column as one flat int64 array and row offsets starting at 0."""
    arr = column.combine_chunks()
    offsets = arr.offsets.to_numpy().astype(np.int64)
    return arr.flatten().to_numpy(zero_copy_only=False).astype(np.int64), offsets - offsets[0]


# --------------------------------------------------------------------------- the stage


def preprocess(ws: Workspace, dataset: str = "real", steps: int = DEFAULT_STEPS,
               splitter: str = "motif", seed: int = 0, workers: int = 2,
               on_graph: Callable[[], None] | None = None) -> PreprocessSummary:
    """Preprocess ``dataset`` (``real``, ``nas`` or ``all``) of the workspace into its
    ``processed`` table. ``steps`` is the paper's ``s`` (neighbour-encoding steps), ``splitter``
    the motif splitter (``motif`` or a Table-2 baseline: ``nodes:N``, ``count:K``,
    ``random:A-B``), ``seed`` the split's (and random splitter's) seed."""
    wanted = tuple(dataset_names(dataset))
    if steps < 0:
        raise NarbuildError(f"steps must be >= 0, got {steps}", "the paper uses a few steps, e.g. 2")
    check_splitter(splitter)
    start = time.perf_counter()
    summary = PreprocessSummary(steps=steps, splitter=splitter, seed=seed)
    if dataset == "all":  # the datasets with input
        wanted = tuple(d for d in wanted if ws.table("graphs" if d == "real" else "nas").exists())
        if not wanted:
            ws.table("graphs").read()  # raises the usual "no graphs table yet" error
    with ws.writer("preprocess"):
        for name in wanted:
            summary.datasets[name] = _preprocess_dataset(ws, name, steps, splitter, seed,
                                                         workers, on_graph)
    summary.seconds = round(time.perf_counter() - start, 2)
    return summary


def _preprocess_dataset(ws: Workspace, dataset: str, steps: int, splitter: str, seed: int,
                        workers: int, on_graph: Callable[[], None] | None) -> dict[str, Any]:
    start = time.perf_counter()
    table, meta = _read(ws, dataset)
    status = table.column("status").to_pylist()
    ok = [i for i, s in enumerate(status) if s == "ok"]
    table = table.take(pa.array(ok, type=pa.int64()))
    codes, node_off, names = _operator_codes(table.column("nodes"))
    src, edge_off = flat_lists(table.column("edge_src"))
    dst, _ = flat_lists(table.column("edge_dst"))
    model_ids = table.column("model_id").to_pylist()
    raw_hash = table.column("graph_hash").to_pylist()
    sizes = np.diff(node_off)

    # one task per distinct traced graph (same raw hash, same cleaned graph)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(raw_hash):
        if sizes[i] > 0:
            groups[h or f"row:{i}"].append(i)
    reps = sorted(groups.values(), key=lambda g: -int(sizes[g[0]]))
    tasks = [(k, codes[node_off[g[0]]:node_off[g[0] + 1]], src[edge_off[g[0]]:edge_off[g[0] + 1]],
              dst[edge_off[g[0]]:edge_off[g[0] + 1]], steps, splitter, seed)
             for k, g in enumerate(reps)]
    results = _run(tasks, names, workers, on_graph)
    read_s = time.perf_counter() - start

    records = _collapse(dataset, reps, results, model_ids, meta, table)
    record_ids = [r["record_id"] for r in records]
    splits = stratified_split(record_ids, [r["fine_label"] for r in records], seed)
    for r, s in zip(records, splits):
        r["split"] = s
    arrow = _to_arrow(records, results, names, steps, splitter)
    ws.table("processed").replace(arrow, subdir=dataset)
    stats = _stats(status, sizes, reps, results, records, names)
    stats["seconds"] = round(time.perf_counter() - start, 2)
    stats["seconds_graphs"] = round(read_s, 2)
    return stats


def _run(tasks: list[tuple], names: list[str], workers: int,
         on_graph: Callable[[], None] | None) -> list[dict[str, Any]]:
    """Every task's processed graph, in task order; in the worker pool when there are many."""
    results: list[dict[str, Any] | None] = [None] * len(tasks)

    def record(done: list[tuple[int, dict[str, Any]]] | str) -> None:
        if isinstance(done, str):
            raise NarbuildError(f"preprocessing a graph failed: {done}",
                                "report it, with the graph's model id")
        for k, res in done:
            results[k] = res
            if on_graph:
                on_graph()

    if workers <= 1 or len(tasks) < 8:
        _init_worker(names)
        record(_process_chunk(tasks))
    else:
        chunks = [tasks[i:i + _CHUNK] for i in range(0, len(tasks), _CHUNK)]
        task = pool.Task(_process_chunk, _chunk_failed,
                         setup=functools.partial(_init_worker, names))
        pool.run_pool(chunks, task, pool.Limits(workers=workers), record)
    return results  # type: ignore[return-value]


_CHUNK = 16
"""Graphs a worker processes per round trip."""


def _process_chunk(chunk: list[tuple]) -> list[tuple[int, dict[str, Any]]] | str:
    try:
        return [_process_task(task) for task in chunk]
    except Exception as exc:  # noqa: BLE001 - the parent raises it as one line
        return one_line(exc)


def _chunk_failed(chunk: list[tuple], reason: str, seconds: float) -> str:
    return reason


def _collapse(dataset: str, reps: list[list[int]], results: list[dict[str, Any]],
              model_ids: list[str], meta: dict[str, dict[str, Any]], table: pa.Table
              ) -> list[dict[str, Any]]:
    """One record per cleaned-graph hash, keeping every model id that produces it."""
    by_hash: dict[str, list[int]] = defaultdict(list)
    for k, res in enumerate(results):
        by_hash[res["graph_hash"]].append(k)
    flops, params = table.column("flops").to_pylist(), table.column("params").to_pylist()
    records = []
    for ghash, ks in sorted(by_hash.items()):
        rows = sorted((i for k in ks for i in reps[k]), key=lambda i: model_ids[i])
        ids = [model_ids[i] for i in rows]
        labels = [fine_label(meta.get(m) or {"model_id": m}) for m in ids]
        fine = Counter(lbl for lbl, _ in labels).most_common()
        best = min(lbl for lbl, n in fine if n == fine[0][1])
        head = meta.get(ids[0]) or {}
        records.append({
            "record_id": f"{dataset}:{ghash[:16]}", "dataset": dataset, "model_id": ids[0],
            "model_ids": ids, "num_models": len(ids),
            "source": head.get("source") or ids[0].partition(":")[0], "task": head.get("task"),
            "fine_label": best, "fine_labels": [lbl for lbl, _ in labels],
            "label_source": next(how for lbl, how in labels if lbl == best),
            "graph_hash": ghash, "flops": flops[rows[0]], "params": params[rows[0]],
            "genotype": head.get("genotype"), "cluster": head.get("cluster"),
            "_result": ks[0], "_conflict": len(fine) > 1,
        })
    return records


def _list(arrays: list[np.ndarray], type_: pa.DataType) -> pa.ListArray:
    """A list column from per-row numpy arrays, without a round trip through Python lists."""
    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    offsets = pa.array(np.r_[0, np.cumsum(lengths)].astype(np.int32))
    values = np.concatenate(arrays) if arrays else np.zeros(0)
    return pa.ListArray.from_arrays(offsets, pa.array(values.astype(type_.value_type.to_pandas_dtype())))


def _to_arrow(records: list[dict[str, Any]], results: list[dict[str, Any]], names: list[str],
              steps: int, splitter: str) -> pa.Table:
    res = [results[r["_result"]] for r in records]
    n = len(records)
    ids_of = np.array([op_id(name) for name in names], dtype=np.int32)
    codes = [r["codes"] for r in res]
    flat = np.concatenate(codes) if codes else np.zeros(0, np.int32)
    lengths = np.array([len(c) for c in codes], dtype=np.int64)
    offsets = pa.array(np.r_[0, np.cumsum(lengths)].astype(np.int32))
    name_values = pa.array(names, type=pa.string()).take(pa.array(flat.astype(np.int64)))
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    i32 = pa.list_(pa.int32())
    columns: dict[str, Any] = {key: [r[key] for r in records] for key in (
        "record_id", "dataset", "model_id", "model_ids", "num_models", "source", "task",
        "fine_label", "fine_labels", "label_source", "split", "graph_hash", "flops", "params",
        "genotype", "cluster")}
    columns.update({
        "coarse_label": [r["coarse_label"] for r in res],
        "op_names": pa.ListArray.from_arrays(offsets, name_values),
        "op_ids": pa.ListArray.from_arrays(offsets, pa.array(ids_of[flat] if len(flat) else
                                                             np.zeros(0, np.int32))),
        "edge_src": _list([r["edge_src"] for r in res], i32),
        "edge_dst": _list([r["edge_dst"] for r in res], i32),
        "num_nodes": lengths.astype(np.int32), "num_edges": [len(r["edge_src"]) for r in res],
        "node_motif": _list([r["node_motif"] for r in res], i32),
        "macro_motif": _list([r["macro_motif"] for r in res], i32),
        "macro_edge_src": _list([r["macro_edge_src"] for r in res], i32),
        "macro_edge_dst": _list([r["macro_edge_dst"] for r in res], i32),
        "num_motifs": [len(r["macro_motif"]) for r in res],
        "motif_keys": [r["motif_keys"] for r in res], "motif_ops": [r["motif_ops"] for r in res],
        "steps": [steps] * n, "splitter": [splitter] * n,
        "narbuild_version": [__version__] * n, "processed_at": [now] * n,
    })
    arrays = [columns[f.name] if isinstance(columns[f.name], pa.Array)
              else pa.array(columns[f.name], type=f.type) for f in schemas.PROCESSED]
    arrays = [a.cast(f.type) for a, f in zip(arrays, schemas.PROCESSED)]
    return pa.Table.from_arrays(arrays, schema=schemas.PROCESSED)


def _stats(status: list[str], sizes: np.ndarray, reps: list[list[int]],
           results: list[dict[str, Any]], records: list[dict[str, Any]], names: list[str]
           ) -> dict[str, Any]:
    """The closing note's figures for one dataset."""
    weights = np.array([len(g) for g in reps], dtype=np.int64)
    # vocabulary coverage over every ok graph (duplicates counted once per model)
    per_name = np.zeros(len(names), dtype=np.int64)
    for k, g in enumerate(reps):
        np.add.at(per_name, results[k]["codes"], weights[k])
    total = int(per_name.sum())
    ids = np.array([op_id(n) for n in names])
    outside = {names[i]: int(per_name[i]) for i in np.argsort(-per_name)
               if per_name[i] and not 0 < ids[i] < FIRST_EXTRA_ID}
    unknown = {n: c for n, c in outside.items() if op_id(n) == 0}
    removed = int(sum(results[k]["removed"] * weights[k] for k in range(len(reps))))
    res = [results[r["_result"]] for r in records]
    motifs = [len(r["macro_motif"]) for r in res]
    ratios = [len(r["codes"]) / m for r, m in zip(res, motifs) if m]
    keys = Counter(k for r in res for k in r["motif_keys"])
    return {
        "rows": len(status), "ok": int((sizes > 0).sum()),
        "errors": sum(s != "ok" for s in status), "empty": int((sizes == 0).sum()),
        "records": len(records), "collapsed": int((sizes > 0).sum()) - len(records),
        "records_with_duplicates": sum(r["num_models"] > 1 for r in records),
        "label_conflicts": sum(r["_conflict"] for r in records),
        "nodes": total, "removed_nodes": removed,
        "outside_published_share": round(sum(outside.values()) / total, 4) if total else 0.0,
        "unknown_share": round(sum(unknown.values()) / total, 4) if total else 0.0,
        "outside_published_top": dict(list(outside.items())[:15]),
        "unknown_ops": unknown,
        "fine_labels": dict(Counter(r["fine_label"] for r in records).most_common()),
        "coarse_labels": dict(Counter(r["coarse_label"] for r in res).most_common()),
        "label_sources": dict(Counter(r["label_source"] for r in records)),
        "splits": dict(Counter(r["split"] for r in records)),
        "median_nodes": statistics.median(len(r["codes"]) for r in res) if res else 0,
        "median_motifs": statistics.median(motifs) if motifs else 0,
        "median_compression": round(statistics.median(ratios), 2) if ratios else 0.0,
        "distinct_motifs": len(keys),
        "shared_motifs": sum(c > 1 for c in keys.values()),
    }
