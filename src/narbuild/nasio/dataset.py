"""The ``nas_io`` table: networks sampled from ``nas``, trained, their outputs preprocessed.

As the paper (608 training and 77 validation networks): ``train`` labelled training networks
and ``val`` unseen networks, drawn from every edit-distance class in proportion to its size
(the paper draws them from arch2vec's train and test split of NAS-Bench-101). Each network is
trained (:mod:`.train`) and written as its own row at once, so an interrupted run keeps every
network it finished and a re-run skips them. When every sampled network is in the table, the
preprocessed columns are computed (:mod:`.preprocess`; they need the training networks'
per-feature statistics) and the table is rewritten once, in one step.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from narbuild import schemas
from narbuild._version import __version__
from narbuild.errors import NarbuildError
from narbuild.nasio import preprocess
from narbuild.nasio.data import DATASET, Images, load_images
from narbuild.nasio.train import Trained, TrainSettings, train_network
from narbuild.workspace import Table, Workspace

TRAIN_NETWORKS, VAL_NETWORKS = 608, 77
"""The paper's counts."""


def sample_networks(nas: pa.Table, train: int, val: int, seed: int) -> pa.Table:
    """``train`` + ``val`` networks of a ``nas`` table (model_id, genotype, cluster), drawn
    per edit-distance class in proportion to its size; columns model_id, genotype, cluster,
    split, in a seeded training order."""
    nas = nas.select(["model_id", "genotype", "cluster"]).sort_by("model_id")
    if train + val > nas.num_rows:
        raise NarbuildError(f"asked for {train} + {val} networks but the nas table has "
                            f"{nas.num_rows}", "lower --train/--val, or run `narbuild gen-nas` "
                                               "with a larger --count")
    rng = np.random.default_rng(seed)
    cluster = nas.column("cluster").to_numpy()
    members = [rng.permutation(np.flatnonzero(cluster == c)) for c in np.unique(cluster)]
    both = _allocate(train + val, np.array([len(m) for m in members]))
    held = _allocate(val, both)
    val_rows = np.concatenate([m[:v] for m, v in zip(members, held)])
    train_rows = np.concatenate([m[v:b] for m, v, b in zip(members, held, both)])
    rows = np.concatenate([train_rows, val_rows])
    split = np.array(["train"] * len(train_rows) + ["val"] * len(val_rows))
    order = rng.permutation(len(rows))
    return nas.take(rows[order]).append_column("split", pa.array(split[order]))


def _allocate(total: int, sizes: np.ndarray) -> np.ndarray:
    """``total`` split over groups in proportion to ``sizes``, none above its size (largest
    remainders get the rounding, ties to the first group)."""
    share = total * sizes / max(int(sizes.sum()), 1)
    counts = np.floor(share).astype(np.int64)
    for i in np.argsort(-(share - counts), kind="stable")[:total - int(counts.sum())]:
        counts[i] += 1
    return counts


def network_seed(seed: int, model_id: str) -> int:
    """A network's own seed: the same whatever order or run it is trained in."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{model_id}".encode()).digest()[:4], "little")


def run_settings(train: int, val: int, seed: int, settings: TrainSettings,
                 images: Images) -> str:
    """The JSON every row carries; a re-run must match it to resume."""
    return json.dumps({
        "train_networks": train, "val_networks": val, "seed": seed, **settings.as_dict(),
        "dataset": DATASET, "train_images": len(images.train_y),
        "val_images": images.val_index.tolist(), "val_labels": images.val_y.tolist(),
        "unseen_images": images.unseen_index.tolist(),
        "unseen_labels": images.unseen_y.tolist()}, sort_keys=True)


def build(ws: Workspace, train: int = TRAIN_NETWORKS, val: int = VAL_NETWORKS, seed: int = 0,
          settings: TrainSettings | None = None,
          on_network: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train the sampled networks not yet in the workspace's ``nas_io`` table, one row each,
    then preprocess the outputs once all are there. ``on_network`` is called once per sampled
    network (with ``skipped`` for those already in the table). Returns a summary."""
    settings = settings or TrainSettings()
    check_options(train, val, seed, settings)
    start = time.perf_counter()
    with ws.writer("nas-io"):
        picked = sample_networks(_nas(ws), train, val, seed)
        images = load_images(seed)
        text = run_settings(train, val, seed, settings, images)
        table = ws.table("nas_io")
        done = _resume(table, picked, text)
        todo = [r for r in picked.to_pylist() if r["model_id"] not in done]
        for model_id in sorted(done) if on_network else ():
            on_network({"model_id": model_id, "skipped": True})
        _train_all(table, todo, images, settings, seed, text, on_network)
        processed = finish(table, images, picked.num_rows)
        ws.record_command("nas-io", command(train, val, seed, settings))
    return summary(table, len(todo), len(done), processed, time.perf_counter() - start)


def _train_all(table: Table, todo: list[dict[str, Any]], images: Images,
               settings: TrainSettings, seed: int, text: str,
               on_network: Callable[[dict[str, Any]], None] | None) -> None:
    """Train each network on one thread and append its row at once."""
    with _one_thread():
        for net in todo:
            net_seed = network_seed(seed, net["model_id"])
            trained = train_network(net["genotype"], images, settings, net_seed)
            table.append([_row(net, trained, net_seed, text)])
            if on_network:
                on_network({"model_id": net["model_id"], "skipped": False,
                            "accuracy": trained.accuracy, "seconds": trained.seconds})


def check_options(train: int, val: int, seed: int, settings: TrainSettings) -> None:
    """One-line errors for options no run can use."""
    if train < 1 or val < 0:
        raise NarbuildError(f"--train {train} --val {val}: need at least one training "
                            "network and no negative count")
    if not 0 <= seed < 2 ** 32:
        raise NarbuildError(f"seed {seed} is out of range", "use 0 <= seed < 2**32")
    if settings.width < 2 or settings.width % 2:
        raise NarbuildError(f"width {settings.width} is not an even number of channels >= 2",
                            "use --width 2, 4, 8, ...")
    if settings.epochs < 1 or settings.batch_size < 1 or settings.depth < 3:
        raise NarbuildError("epochs and batch size must be at least 1 and depth at least 3")


def command(train: int, val: int, seed: int, settings: TrainSettings) -> str:
    """The command line that reproduces a run (for the dataset card)."""
    return (f"narbuild nas-io --train {train} --val {val} --epochs {settings.epochs} "
            f"--width {settings.width} --seed {seed}")


def _nas(ws: Workspace) -> pa.Table:
    nas = ws.table("nas")
    if not nas.exists():
        raise NarbuildError("the workspace has no nas table", "run `narbuild gen-nas` first")
    rows = nas.read(["model_id", "genotype", "cluster", "status"])
    return rows.filter(pc.equal(rows.column("status"), "ok"))


def _resume(table: Table, picked: pa.Table, text: str) -> set[str]:
    """Model ids already trained by a run with the same settings and sample."""
    if not table.exists():
        return set()
    have = table.read(["model_id", "genotype", "settings"]).to_pylist()
    hint = f"re-run with the options it was built with, or delete {table.path} to rebuild"
    other = sorted({r["settings"] for r in have} - {text})
    if other:
        raise NarbuildError("the nas_io table was built with other options ("
                            + _differences(json.loads(other[0]), json.loads(text)) + ")", hint)
    genotypes = dict(zip(picked.column("model_id").to_pylist(),
                         picked.column("genotype").to_pylist()))
    if any(genotypes.get(r["model_id"]) != r["genotype"] for r in have):
        raise NarbuildError("the nas_io table was built from another nas table", hint)
    return {r["model_id"] for r in have}


def _differences(old: dict, new: dict) -> str:
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    short = [k for k in keys if not isinstance(new.get(k, old.get(k)), list)]
    return ", ".join(f"{k} {old.get(k)} now {new.get(k)}" for k in short) or ", ".join(keys)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Train on one CPU thread: deterministic, and small networks gain nothing from more."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _row(net: dict[str, Any], t: Trained, seed: int, text: str) -> dict[str, Any]:
    import torch

    return {
        "model_id": net["model_id"], "split": net["split"], "genotype": net["genotype"],
        "cluster": net["cluster"], "params": t.params, "accuracy": t.accuracy,
        "unseen_accuracy": t.unseen_accuracy, "train_loss": t.train_loss,
        "features": t.val_features.shape[1], "val_outputs": t.val_features.ravel(),
        "unseen_outputs": t.unseen_features.ravel(), "dense_weight": t.weight.ravel(),
        "dense_bias": t.bias, "seed": seed, "seconds": round(t.seconds, 3), "settings": text,
        "torch_version": torch.__version__, "narbuild_version": __version__,
        "trained_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0),
    }


# --- preprocessing, once every network is in -------------------------------------------------

def finish(table: Table, images: Images, expected: int) -> bool:
    """Fill ``val_io`` and ``unseen_io`` when all ``expected`` networks are in the table and
    they are not filled yet; rewrite the table in one step. Whether the table is complete."""
    if not table.exists() or len(table.keys()) < expected:
        return False
    if len(table.parts()) == 1 and table.read(["val_io"]).column("val_io").null_count == 0:
        return True
    rows = table.read()
    val_io, unseen_io = preprocess_outputs(rows, images)
    for name, values in (("val_io", val_io), ("unseen_io", unseen_io)):
        rows = rows.set_column(rows.schema.get_field_index(name), schemas.NAS_IO.field(name),
                               _list_column(values))
    table.replace(rows)
    return True


def preprocess_outputs(rows: pa.Table, images: Images) -> tuple[np.ndarray, np.ndarray]:
    """The paper's preprocessing of every row's raw outputs: (networks, images, F + 1) for the
    validation and the unseen images; per-feature statistics from the ``train`` rows."""
    f = rows.column("features")[0].as_py()
    labels = {"val": images.val_y, "unseen": images.unseen_y}
    raw = {name: _matrix(rows.column(f"{name}_outputs"), len(labels[name]), f)
           for name in labels}
    weight = _matrix(rows.column("dense_weight"), -1, f)
    bias = _matrix(rows.column("dense_bias"), -1, 1)[..., 0]
    done = [preprocess.per_network({n: raw[n][i] for n in raw}, labels, weight[i], bias[i])
            for i in range(rows.num_rows)]
    val = np.stack([d["val"] for d in done])
    unseen = np.stack([d["unseen"] for d in done])
    is_train = np.asarray(rows.column("split").to_pylist()) == "train"
    mean, std = preprocess.feature_scale(val[is_train].reshape(-1, f + 1))
    return (preprocess.scale_features(val, mean, std),
            preprocess.scale_features(unseen, mean, std))


def _matrix(column: pa.ChunkedArray, images: int, f: int) -> np.ndarray:
    values = pc.list_flatten(column).to_numpy()
    return values.reshape(len(column), images, f)


def _list_column(values: np.ndarray) -> pa.ListArray:
    per_row = values[0].size
    offsets = np.arange(len(values) + 1, dtype=np.int32) * per_row
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.ravel(), pa.float32()))


def summary(table: Table, trained: int, skipped: int, processed: bool,
            seconds: float) -> dict[str, Any]:
    """Counts, accuracy and time per network over the whole table."""
    rows = table.read(["split", "accuracy", "unseen_accuracy", "seconds", "features", "params"])
    acc = rows.column("accuracy").to_numpy()
    secs = rows.column("seconds").to_numpy()
    splits = rows.column("split").to_pylist()
    return {
        "rows": rows.num_rows, "train": splits.count("train"), "val": splits.count("val"),
        "trained": trained, "skipped": skipped, "preprocessed": processed,
        "features": rows.column("features")[0].as_py(),
        "accuracy": _stats(acc), "unseen_accuracy": _stats(rows.column("unseen_accuracy")
                                                            .to_numpy()),
        "seconds_per_network": _stats(secs), "params": _stats(rows.column("params").to_numpy()),
        "seconds_total": round(seconds, 2), "path": str(table.path),
    }


def _stats(x: np.ndarray) -> dict[str, float]:
    q = np.percentile(x, [0, 25, 50, 75, 100])
    return {"mean": round(float(x.mean()), 4),
            **{k: round(float(v), 4) for k, v in zip(("min", "p25", "median", "p75", "max"), q)}}
