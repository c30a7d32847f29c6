"""``narbuild embed``: the embeddings table, from the bundled encoder, a checkpoint, or a
fresh training run on the workspace's training records."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from narbuild._version import __version__
from narbuild.encoder.bundled import BUNDLED, bundled_checkpoint
from narbuild.encoder.checkpoint import (
    encoder_id,
    encoder_label,
    load_checkpoint,
    save_checkpoint,
)
from narbuild.encoder.data import Inputs, load_datasets
from narbuild.encoder.methods import LEARNED
from narbuild.encoder.train import TrainConfig, resolve_device, vectors_of
from narbuild.errors import NarbuildError
from narbuild.preprocess.pipeline import dataset_names
from narbuild.workspace import Table, Workspace

TRAINABLE = tuple(LEARNED)
"""Every method of the registry; without ``--train`` only an encoder's checkpoint embeds."""


@dataclass
class EmbedSummary:
    method: str
    device: str
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "device": self.device, "datasets": self.datasets}


def embed(ws: Workspace, dataset: str = "all", method: str = BUNDLED[0], train: bool = False,
          checkpoint: str | Path | None = None, save_to: str | Path | None = None,
          cfg: TrainConfig | None = None, device: str = "auto", executor: str = "local",
          address: str | None = None) -> EmbedSummary:
    """Embed every processed record of ``dataset`` (real | nas | all) into the embeddings table.

    With ``train``, ``method`` (any learned method of :data:`narbuild.encoder.methods.LEARNED`,
    with its own recipe over ``cfg``) is trained on the dataset's training records and saved to
    ``save_to`` (default ``<workspace>/checkpoints/<method>-<dataset>.pt``); otherwise the
    encoder comes from ``checkpoint``, or ``method``'s bundled checkpoint of each dataset
    (:data:`~narbuild.encoder.bundled.BUNDLED`: wl-metric, the default, and nar). With
    ``executor="ray"`` a checkpoint embeds on the Ray cluster at ``address``
    (:mod:`narbuild.encoder.ray_embed`).
    """
    if executor == "ray" and train:
        raise NarbuildError("--executor ray embeds with a checkpoint; it does not train",
                            "train first (narbuild embed --train), then embed with "
                            "--checkpoint on Ray")
    if method not in TRAINABLE:
        raise NarbuildError(f"unknown method {method!r}", f"use one of {', '.join(TRAINABLE)}")
    if executor == "ray":
        return _embed_on_ray(ws, dataset, method, checkpoint, device, address)
    if train and checkpoint:
        raise NarbuildError("--train and --checkpoint exclude each other",
                            "--train trains a new encoder; --checkpoint loads one")
    if train and LEARNED[method].io and dataset != "nas":
        raise NarbuildError(f"{method} learns from the nas_io table, which only the nas set "
                            "has", "use --dataset nas")
    dev = resolve_device(device)
    loaded = load_datasets(ws, dataset_names(dataset), skip_missing=dataset == "all")
    summary = EmbedSummary(method, str(dev))
    for name, records in loaded.items():
        start, inputs = time.perf_counter(), Inputs(records)
        if train:
            spec = LEARNED[method]
            recipe = spec.config(cfg or TrainConfig())
            if spec.io:
                from narbuild.nasio.arch2vec import load_io

                inputs.io = load_io(ws, records)
            model, stats = spec.train(inputs, cfg or TrainConfig(), dev)
            meta = {"method": spec.encoder, "extra": {"learned": method},
                    "epoch_seconds": stats.epoch_seconds}
            target = ws.root / "checkpoints" / f"{method}-{name}.pt"
            if save_to:
                target = Path(save_to)
                if len(loaded) > 1:  # one file per dataset
                    target = target.with_name(f"{target.stem}-{name}{target.suffix}")
            meta["hash"] = save_checkpoint(model, spec.encoder, name, recipe,
                                           records.label_names, target, {"learned": method})
            meta["path"] = str(target)
        else:
            path = Path(checkpoint) if checkpoint else _bundled(method, name)
            model, meta = load_checkpoint(path)
            meta["path"] = str(path)
        embed_start = time.perf_counter()
        vectors = vectors_of(meta["method"], model, inputs, dev)
        seconds = time.perf_counter() - embed_start
        summary.datasets[name] = _store(ws, name, records.record_ids,
                                        records.table["model_id"].to_pylist(), vectors, meta,
                                        not (train or checkpoint), seconds, start)
    return summary


def _embed_on_ray(ws: Workspace, dataset: str, method: str, checkpoint: str | Path | None,
                  device: str, address: str | None) -> EmbedSummary:
    """``embed`` with Ray workers doing the work; the driver reads only ids and writes."""
    from narbuild.encoder.ray_embed import embed_on_ray

    processed, names = ws.table("processed"), dataset_names(dataset)
    present = [n for n in names if processed.parts(n)] if dataset == "all" else names
    summary = EmbedSummary(method, f"ray ({device})")
    for name in present or names:
        start = time.perf_counter()
        path = Path(checkpoint) if checkpoint else _bundled(method, name)
        _, meta = load_checkpoint(path)
        meta["path"] = str(path)
        ids = processed.read(["record_id", "model_id"], subdir=name).sort_by("record_id")
        found = embed_on_ray(ws, name, path, device, address)
        record_ids = ids["record_id"].to_pylist()
        vectors = np.stack([found[r] for r in record_ids])
        summary.datasets[name] = _store(ws, name, record_ids, ids["model_id"].to_pylist(),
                                        vectors, meta, not checkpoint,
                                        time.perf_counter() - start, start)
    return summary


def _store(ws: Workspace, dataset: str, record_ids: list[str], model_ids: list[str],
           vectors: np.ndarray, meta: dict[str, Any], bundled: bool, embed_seconds: float,
           start: float) -> dict[str, Any]:
    """Write one dataset's vectors under the checkpoint's name; its summary entry."""
    made_by = encoder_id(meta, bundled)
    _write(ws, record_ids, model_ids, dataset, encoder_label(meta), made_by, vectors)
    return {"records": len(record_ids), "dim": int(vectors.shape[1]), "encoder_id": made_by,
            "checkpoint": meta["path"], "embed_seconds": round(embed_seconds, 2),
            "graphs_per_second": round(len(record_ids) / max(embed_seconds, 1e-9)),
            "seconds": round(time.perf_counter() - start, 2)}


def _bundled(method: str, dataset: str) -> Path:
    path = bundled_checkpoint(method, dataset)
    if path is None:
        raise NarbuildError(f"no bundled {method} encoder for the {dataset} set",
                            f"train it: `narbuild embed --train --method {method}`, pass "
                            f"--checkpoint, or use --method {' or '.join(BUNDLED)}")
    return path


def _write(ws: Workspace, record_ids: list[str], model_ids: list[str], dataset: str,
           method: str, encoder_id: str, vectors: np.ndarray) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    rows = [{"embedding_id": f"{method}:{rid}", "record_id": rid, "dataset": dataset,
             "model_id": mid, "method": method, "encoder_id": encoder_id,
             "dim": int(vectors.shape[1]), "vector": vec.tolist(),
             "narbuild_version": __version__, "embedded_at": now}
            for rid, mid, vec in zip(record_ids, model_ids, vectors.astype(np.float32))]
    table = ws.table("embeddings")
    _move_to_dataset_folders(table)
    table.append(rows, subdir=dataset)
    table.compact(dataset)


def _move_to_dataset_folders(table: Table) -> None:
    """Embeddings written before they were stored per dataset (all in the table's folder) move
    to their dataset's folder, so that a search of one dataset reads only its own vectors."""
    legacy = sorted(table.path.glob("*.parquet"))
    if not legacy:
        return
    rows = table.read()
    for name in sorted(set(rows["dataset"].to_pylist())):
        table.replace(rows.filter(pc.equal(rows["dataset"], name)), subdir=name)
    table.replace_files([])  # the old parts go, under the tables lock
