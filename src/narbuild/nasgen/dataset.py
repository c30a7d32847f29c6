"""``narbuild gen-nas``: the ``nas`` table of DARTS-space networks in edit-distance classes.

Steps (all seeded by one ``numpy.random.Generator``; same arguments, same table):

1. centres: farthest-point sampling over a pool of random networks (:mod:`.sampling`);
2. members: random edits of each centre, kept when within the edit radius, strictly closer to
   their own centre than to any other, and not a copy of a network already kept;
3. graphs: both views of every network (:mod:`.graphs`), the tracer's graph hash (:mod:`.wl`),
   FLOPs and parameters (:mod:`.cost`), chunk by chunk;
4. an Arrow table in the :data:`narbuild.schemas.NAS` schema, rows ordered by class and member.

The ``graphs`` columns of a generated row:

- ``model_id`` ``nas:<class>-<member>`` (member 0 is the class centre); ``status`` ok;
- ``nodes``, ``edge_src``, ``edge_dst``, ``num_nodes``, ``num_edges``: the operator-level view
  (the real models' autograd vocabulary); ``graph_hash``: ``OpGraph.graph_hash`` of it;
- ``flops``, ``macs``, ``params``: computed analytically (:mod:`.cost`) for the network built
  with ``channels`` (16) and ``num_classes`` (10) on one 3x32x32 input, which ``inputs`` and
  ``outputs`` describe; equal to ``FlopCounterMode`` and the parameter count of the module;
- ``config_hash``: sha256 of the JSON that builds the network (:func:`build_configs`);
- ``torch_version``: the installed torch, whose autograd names the operator view uses;
- ``traced_at``: :data:`EPOCH` plus ``seed`` seconds;
- ``device``, ``dtype``, ``fallback``, ``attention``, ``wall_time_s``, ``peak_rss_mb``, ``error``:
  null (nothing is traced; per-row timings would break byte-for-byte determinism).

The NAS columns: ``genotype`` (canonical form), ``darts_*`` (the DARTS-level view), ``cluster``,
``centre`` (the centre's genotype) and ``distance`` (exact graph edit distance to it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import re
import resource
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from narbuild import schemas
from narbuild._version import __version__
from narbuild.errors import NarbuildError
from narbuild.nasgen.cost import IMAGE_SIZE, network_costs
from narbuild.nasgen.genotype import CONCAT, NODES, OPS, arrays_to_slots
from narbuild.nasgen.graphs import DARTS_VIEW, OPERATOR_VIEW, build_graphs, reduction_cells
from narbuild.nasgen.sampling import Classes, generate_classes
from narbuild.nasgen.wl import wl_hashes

if TYPE_CHECKING:
    from narbuild.workspace import Workspace

EPOCH = dt.datetime(2024, 5, 7, tzinfo=dt.timezone.utc)
"""``traced_at`` of a generated row is this instant (ICLR 2024) plus ``seed`` seconds, so that a
seed fixes the table byte for byte."""
CHUNK = 2500
"""Networks per graph-building chunk (bounds the memory of the bulk builders)."""


@dataclass
class NasSet:
    """A generated set: the table, the class arrays behind it, and how long each step took."""

    table: pa.Table
    classes: Classes
    options: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self, darts_nodes: np.ndarray | None = None) -> dict[str, Any]:
        """Class sizes, radius, and distance distributions within and between classes."""
        c = self.classes
        off = c.centre_distances[~np.eye(len(c.centres), dtype=bool)]
        nearest_other = c.distance + c.margin
        return {
            "rows": len(c.cluster),
            "options": self.options,
            "class_sizes": np.bincount(c.cluster).tolist(),
            "radius": c.radius,
            "centre_distance": {"min": int(off.min()) if off.size else None,
                                "max": int(off.max()) if off.size else None},
            "distance_to_own_centre": _histogram(c.distance),
            "distance_to_nearest_other_centre": _histogram(nearest_other),
            "min_margin": int(c.margin.min()),
            "nodes": _stats(self.table.column("num_nodes").to_numpy()),
            "darts_nodes": _stats(darts_nodes if darts_nodes is not None else
                                  pc.list_value_length(self.table.column("darts_nodes"))
                                  .to_numpy()),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def _histogram(values: np.ndarray) -> dict[int, int]:
    counts = np.bincount(values)
    return {int(d): int(n) for d, n in enumerate(counts) if n}


def _stats(values: np.ndarray) -> dict[str, float]:
    return {"min": int(values.min()), "mean": round(float(values.mean()), 1),
            "max": int(values.max())}


def generate(count: int = 30000, classes: int = 10, seed: int = 0, depth: int = 8,
             **options: Any) -> pa.Table:
    """``count`` DARTS-space networks in ``classes`` edit-distance classes, as a ``nas`` table.

    Other options: ``radius`` (edit radius around each centre; default: the largest the
    centres guarantee), ``pool`` (random networks the centres are chosen from), ``channels``
    and ``num_classes`` (network width and classifier size, for FLOPs and parameters).
    """
    return generate_set(count, classes, seed, depth, **options).table


def generate_set(count: int = 30000, classes: int = 10, seed: int = 0, depth: int = 8,
                 radius: int | None = None, pool: int = 10000, channels: int = 16,
                 num_classes: int = 10) -> NasSet:
    """Like :func:`generate`, also returning the class arrays, a summary and timings."""
    options = set_options(count, classes, seed, depth, radius, pool, channels, num_classes)
    seconds: dict[str, float] = {}
    made = _classes(options, seconds)
    start = time.perf_counter()
    columns = _graph_columns(made.normal, made.reduce, depth, channels, num_classes)
    seconds["graphs"] = time.perf_counter() - start
    start = time.perf_counter()
    table = _table(made, columns, options)
    seconds["table"] = time.perf_counter() - start
    return NasSet(table, made, options, seconds)


def set_options(count: int = 30000, classes: int = 10, seed: int = 0, depth: int = 8,
                radius: int | None = None, pool: int = 10000, channels: int = 16,
                num_classes: int = 10) -> dict[str, Any]:
    """A set's options, checked, with their defaults (as the summary reports them)."""
    _check(count, classes, seed, depth, radius, pool, channels, num_classes)
    return {"count": count, "classes": classes, "seed": seed, "depth": depth,
            "radius": radius, "pool": pool, "channels": channels, "num_classes": num_classes}


def _classes(options: dict[str, Any], seconds: dict[str, float]) -> Classes:
    """Step 1 and 2 (centres, members), from one generator seeded by ``options["seed"]``."""
    start = time.perf_counter()
    made = generate_classes(np.random.default_rng(options["seed"]), options["count"],
                            options["classes"], options["pool"], options["radius"])
    seconds["classes"] = time.perf_counter() - start
    return made


def _check(count, classes, seed, depth, radius, pool, channels, num_classes) -> None:
    if classes < 1 or count < classes:
        raise NarbuildError(f"cannot split {count} networks into {classes} classes",
                            "ask for at least one network per class")
    if not 0 <= seed < 2 ** 32:
        raise NarbuildError(f"seed {seed} is out of range", "use 0 <= seed < 2**32")
    if pool < classes:
        raise NarbuildError(f"a pool of {pool} networks cannot give {classes} centres",
                            "use a larger --pool")
    if radius is not None and radius < 1:
        raise NarbuildError(f"edit radius {radius} leaves no room around a centre",
                            "use --radius 1 or more")
    if channels < 2 or channels % 2 or num_classes < 1:
        raise NarbuildError("channels must be even and at least 2, num_classes at least 1")
    reduction_cells(depth)


# --- graphs, chunk by chunk -----------------------------------------------------------------

def _graph_columns(normal, reduce, depth, channels, num_classes) -> list[dict]:
    """Graph columns chunk by chunk (one process: the whole run fits the time goal on one
    core, and a process pool would have to re-import the caller's ``__main__``)."""
    return [_chunk(normal[i:i + CHUNK], reduce[i:i + CHUNK], depth, channels, num_classes)
            for i in range(0, len(normal), CHUNK)]


def _chunk(normal: np.ndarray, reduce: np.ndarray, depth: int, channels: int,
           num_classes: int) -> dict[str, Any]:
    """Both graph views, graph hashes, FLOPs and parameters of a chunk of networks."""
    ops = build_graphs(normal, reduce, depth, OPERATOR_VIEW)
    darts = build_graphs(normal, reduce, depth, DARTS_VIEW)
    hashes = wl_hashes(ops.vocab, ops.labels, ops.num_nodes, ops.src, ops.dst, ops.num_edges)
    flops, params = network_costs(normal, reduce, depth, channels, num_classes)
    return {
        "nodes": _list_array(ops.num_nodes, pa.array(ops.vocab).take(pa.array(ops.labels))),
        "edge_src": _list_array(ops.num_edges, pa.array(ops.src)),
        "edge_dst": _list_array(ops.num_edges, pa.array(ops.dst)),
        "num_nodes": pa.array(ops.num_nodes, pa.int32()),
        "num_edges": pa.array(ops.num_edges, pa.int32()), "graph_hash": pa.array(hashes),
        "darts_nodes": _list_array(darts.num_nodes,
                                   pa.array(darts.vocab).take(pa.array(darts.labels))),
        "darts_edge_src": _list_array(darts.num_edges, pa.array(darts.src)),
        "darts_edge_dst": _list_array(darts.num_edges, pa.array(darts.dst)),
        "flops": pa.array(flops), "macs": pa.array(flops // 2), "params": pa.array(params),
    }


def _list_array(counts: np.ndarray, values: pa.Array) -> pa.ListArray:
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


# --- the table ------------------------------------------------------------------------------

def _genotype_strings(normal: np.ndarray, reduce: np.ndarray) -> list[str]:
    """:func:`format_genotype` of each network, from a table of (op, input) strings."""
    pair = [[f"({op!r}, {i})" for i in range(NODES)] for op in OPS]
    concat = "[" + ", ".join(str(i) for i in CONCAT) + "]"

    def cells(arrays: np.ndarray) -> list[str]:
        ops, inputs = arrays_to_slots(arrays)
        return ["[" + ", ".join(pair[o - 1][i] for o, i in zip(row_o, row_i)) + "]"
                for row_o, row_i in zip(ops.tolist(), inputs.tolist())]

    return [f"Genotype(normal={a}, normal_concat={concat}, reduce={b}, reduce_concat={concat})"
            for a, b in zip(cells(normal), cells(reduce))]


def build_configs(genotypes: list[str], options: dict[str, Any]) -> list[str]:
    """The JSON needed to build each network (``json.dumps(..., sort_keys=True)`` of depth,
    channels, num_classes and genotype); ``config_hash`` is its sha256."""
    head = json.dumps({k: options[k] for k in ("channels", "depth")}, sort_keys=True)[:-1]
    tail = f', "num_classes": {json.dumps(options["num_classes"])}}}'
    quote = json.encoder.encode_basestring
    return [f"{head}, \"genotype\": {quote(g)}{tail}" for g in genotypes]


def torch_version() -> str:
    """``torch.__version__``, read from ``torch/version.py`` when possible: importing torch
    costs seconds and hundreds of MiB, and generating needs nothing else from it."""
    if "torch" not in sys.modules:
        try:
            spec = importlib.util.find_spec("torch")
            text = Path(spec.origin).with_name("version.py").read_text()
            return re.search(r"^__version__ = '([^']+)'", text, re.MULTILINE).group(1)
        except (AttributeError, OSError, TypeError):
            pass
    import torch

    return torch.__version__


def _table(made: Classes, chunks: list[dict], options: dict[str, Any]) -> pa.Table:
    columns = {name: pa.chunked_array([c[name] for c in chunks]) for name in chunks[0]}
    return slice_table(made, 0, len(made.cluster), columns, options)


def slice_table(made: Classes, lo: int, hi: int, graph: dict[str, Any],
                options: dict[str, Any]) -> pa.Table:
    """Rows ``lo:hi`` of the ``nas`` table, given their graph columns (:func:`_chunk`)."""
    n = hi - lo
    normal, reduce = made.normal[lo:hi], made.reduce[lo:hi]
    cluster = made.cluster[lo:hi]
    genotypes = _genotype_strings(normal, reduce)
    centres = np.asarray(made.centres)
    centre_genotypes = _genotype_strings(made.normal[centres], made.reduce[centres])
    index = np.arange(lo, hi) - centres[cluster]
    width_c = len(str(options["classes"] - 1))
    width_i = len(str(int((np.arange(len(made.cluster)) - centres[made.cluster]).max())))
    ids = [f"nas:{c:0{width_c}d}-{i:0{width_i}d}" for c, i in zip(cluster.tolist(),
                                                                   index.tolist())]
    config_hash = [hashlib.sha256(text.encode()).hexdigest()
                   for text in build_configs(genotypes, options)]
    traced_at = EPOCH + dt.timedelta(seconds=options["seed"])
    inputs = json.dumps({"0": {"shape": [1, 3, IMAGE_SIZE, IMAGE_SIZE], "dtype": "float32"}})
    columns: dict[str, Any] = {
        **graph, "model_id": ids, "status": ["ok"] * n, "error": pa.nulls(n, pa.string()),
        "inputs": [inputs] * n, "outputs": [json.dumps([[1, options["num_classes"]]])] * n,
        "config_hash": config_hash, "torch_version": [torch_version()] * n,
        "narbuild_version": [__version__] * n, "traced_at": [traced_at] * n,
        "genotype": genotypes, "cluster": cluster, "distance": made.distance[lo:hi],
        "centre": [centre_genotypes[c] for c in cluster.tolist()],
    }
    arrays = []
    for f in schemas.NAS:
        value = columns.get(f.name)
        if value is None:
            arrays.append(pa.nulls(n, f.type))
        elif isinstance(value, (pa.Array, pa.ChunkedArray)):
            arrays.append(value.cast(f.type))
        else:
            arrays.append(pa.array(value, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schemas.NAS)


# --- the workspace --------------------------------------------------------------------------

def write(ws: Workspace, count: int = 30000, classes: int = 10, seed: int = 0, depth: int = 8,
          executor: str = "local", address: str | None = None, chunk: int = CHUNK,
          **options: Any) -> dict[str, Any]:
    """Generate the set and make it the workspace's ``nas`` table, replacing any earlier one
    (:meth:`narbuild.workspace.Table.replace`: a reader sees the old table or the new one).

    With ``executor="ray"`` the genotypes are drawn here (one seeded generator, as locally) and
    Ray tasks build the graphs of ``chunk`` networks each into staging part files, which are
    then swapped in together: the same rows in the same order as a local run, and this process
    never holds the graph columns.

    Returns :meth:`NasSet.summary` plus the part written, the time and the peak memory.
    """
    start = time.perf_counter()
    if executor == "ray":
        summary = _write_on_ray(ws, count, classes, seed, depth, address, chunk, options)
    else:
        made = generate_set(count, classes, seed, depth, **options)
        ws.table("nas").replace(made.table)
        summary = made.summary()
    ws.record_command("gen-nas", command(count, classes, seed, depth, options.get("radius"),
                                         options.get("pool")), replace=True)
    summary.update(path=str(ws.table("nas").parts()[-1]),
                   seconds_total=round(time.perf_counter() - start, 2), peak_rss_mb=peak_rss_mb())
    return summary


def command(count: int, classes: int, seed: int, depth: int, radius: int | None = None,
            pool: int | None = None) -> str:
    """The command line that rebuilds a nas table (for the dataset card)."""
    return (f"narbuild gen-nas --count {count} --classes {classes} --seed {seed} --depth {depth}"
            + (f" --radius {radius}" if radius else "") + (f" --pool {pool}" if pool else ""))


def _write_on_ray(ws: Workspace, count: int, classes: int, seed: int, depth: int,
                  address: str | None, chunk: int, options: dict[str, Any]) -> dict[str, Any]:
    from narbuild.tracing.ray_executor import connect
    from narbuild.workspace import sortable_stamp

    opts = set_options(count, classes, seed, depth, **options)
    seconds: dict[str, float] = {}
    made = _classes(opts, seconds)
    ray = connect(address)
    for leftover in ws.root.glob(".nas.staging-*"):  # of a run killed before its clean-up
        shutil.rmtree(leftover, ignore_errors=True)
    staging = ws.root / f".nas.staging-{sortable_stamp()}"
    staging.mkdir()
    try:
        start, shared, stamp = time.perf_counter(), ray.put(made), sortable_stamp()
        task = ray.remote(num_cpus=1)(_build_part)
        stats = ray.get([task.remote(shared, lo, min(lo + chunk, count), opts,
                                     str(staging / f"part-{stamp}-{lo // chunk:06d}.parquet"))
                         for lo in range(0, count, chunk)])
        seconds["graphs"] = time.perf_counter() - start
        ws.table("nas").replace_files(sorted(staging.glob("part-*.parquet")))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    nodes = np.concatenate([s["nodes"] for s in stats])
    darts = np.concatenate([s["darts_nodes"] for s in stats])
    return NasSet(pa.table({"num_nodes": nodes}), made, opts, seconds).summary(darts_nodes=darts)


def _build_part(made: Classes, lo: int, hi: int, options: dict[str, Any], path: str
                ) -> dict[str, np.ndarray]:
    """A Ray task: rows ``lo:hi`` of the table into ``path``; their node counts."""
    from narbuild.workspace import write_parquet_atomic

    graph = _chunk(made.normal[lo:hi], made.reduce[lo:hi], options["depth"],
                   options["channels"], options["num_classes"])
    table = slice_table(made, lo, hi, graph, options)
    write_parquet_atomic(table, Path(path))
    return {"nodes": table.column("num_nodes").to_numpy(),
            "darts_nodes": pc.list_value_length(table.column("darts_nodes")).to_numpy()}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
