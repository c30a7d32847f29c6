"""``narbuild embed --executor ray``: Ray Data reads the processed parts, Ray workers embed them.

The driver (this process) reads only the record ids. Ray Data reads one dataset's Parquet parts
where its tasks run (``read_parquet``; the workspace is a shared folder, as for ``trace
--executor ray``). Where the cluster has GPUs, a pool of actors (one per GPU) embeds the
batches: each loads the checkpoint once, builds a batch's motif graphs on its CPU and runs the
encoder on its GPU. Without GPUs, plain Ray tasks fused with the reads embed on one CPU each
(each worker process loads the checkpoint once; actors holding every CPU would starve the
reads). Actors and tasks run in fresh Ray worker processes, never forked from a process that
started CUDA. The vectors come back to the driver, which writes them through the workspace's
part writer, as a local run does.

A record's vector does not depend on the batch it is in (a motif's embedding is computed from the
motif alone), so the vectors equal a local run's to float tolerance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from narbuild.errors import NarbuildError
from narbuild.workspace import Workspace

BATCH = 1024
"""Records per batch: big enough that a batch's motifs repeat across its records."""


def embed_on_ray(ws: Workspace, dataset: str, checkpoint: Path, device: str = "auto",
                 address: str | None = None, batch: int = BATCH) -> dict[str, np.ndarray]:
    """The vector of every ``dataset`` record of the processed table, by record id, embedded
    with ``checkpoint`` by Ray workers (``device``: auto | cpu | cuda, on the workers)."""
    from narbuild.encoder.data import COLUMNS
    from narbuild.tracing.ray_executor import connect

    ray = connect(address)
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0)) if device != "cpu" else 0
    if device.startswith("cuda") and not gpus:
        raise NarbuildError("--device cuda, but the Ray cluster has no GPU",
                            "use --device auto or cpu, or add GPU nodes")
    context = ray.data.DataContext.get_current()  # stdout stays the command's (--json)
    context.print_on_execution_start = False
    context.enable_progress_bars = False
    source = _source(ray, ws, dataset, COLUMNS)
    if gpus:  # an actor per GPU keeps its model on the device
        vectors = source.map_batches(
            _Embedder, fn_constructor_kwargs={"checkpoint": str(checkpoint), "gpu": True},
            batch_size=batch, batch_format="pyarrow", concurrency=gpus, num_gpus=1)
    else:  # CPU tasks, fused with the reads (actors holding every CPU would starve them)
        vectors = source.map_batches(_embed_on_cpu, fn_kwargs={"checkpoint": str(checkpoint)},
                                     batch_size=batch, batch_format="pyarrow", num_cpus=1)
    found: dict[str, np.ndarray] = {}
    for part in vectors.iter_batches(batch_format="numpy", batch_size=None):
        found.update(zip(part["record_id"].tolist(), part["vector"]))
    return found


def _source(ray: Any, ws: Workspace, dataset: str, columns: list[str]) -> Any:
    """The dataset's processed rows as a Ray Dataset: its Parquet parts read by Ray Data, or,
    when a record id repeats across parts (the newest row wins), the rows the driver reads."""
    table = ws.table("processed")
    parts = table.parts(dataset)
    if not parts:
        table.read(subdir=dataset)  # the usual one-line error
    ids = [pq.read_table(p, columns=[table.key])[table.key] for p in parts]
    total = sum(len(i) for i in ids)
    if len(pa.chunked_array([c for i in ids for c in i.chunks], pa.string()).unique()) < total:
        return ray.data.from_arrow(table.read(columns, subdir=dataset))
    return ray.data.read_parquet([str(p) for p in parts], columns=columns)


def _embed_on_cpu(batch: pa.Table, checkpoint: str) -> dict[str, np.ndarray]:
    """One Ray task's batch, with the checkpoint loaded once per worker process."""
    if checkpoint not in _ON_CPU:
        _ON_CPU[checkpoint] = _Embedder(checkpoint, gpu=False)
    return _ON_CPU[checkpoint](batch)


_ON_CPU: dict[str, _Embedder] = {}


class _Embedder:
    """The checkpoint loaded once (in a GPU actor, or a CPU worker); each call embeds one
    batch of records."""

    def __init__(self, checkpoint: str, gpu: bool) -> None:
        import torch

        from narbuild.encoder.checkpoint import load_checkpoint

        if not gpu:
            torch.set_num_threads(1)  # one CPU per actor, as reserved
        self.device = torch.device("cuda" if gpu else "cpu")
        self.model, self.meta = load_checkpoint(Path(checkpoint))

    def __call__(self, batch: pa.Table) -> dict[str, np.ndarray]:
        from narbuild.encoder.data import Inputs, records_of
        from narbuild.encoder.train import vectors_of

        records = records_of(batch)
        vectors = vectors_of(self.meta["method"], self.model, Inputs(records), self.device)
        return {"record_id": np.array(records.record_ids, dtype=object),
                "vector": vectors.astype(np.float32)}
