"""Benchmark `narbuild nas-io`: the IO-dataset at the paper's size (608 + 77 networks).

    nice -n 10 .venv/bin/python bench/bench_nas_io.py /tmp/nasio-ws           # full size
    .venv/bin/python bench/bench_nas_io.py /tmp/ws --train 16 --val 4         # a trial

Runs `narbuild gen-nas` into the workspace first when it has no nas table (default 30,000
networks), then `narbuild --json nas-io` in a fresh interpreter, timed from outside (wall, CPU,
peak memory). A run that was interrupted resumes: the figures then say how many networks this
invocation trained, and the per-network seconds stored in the rows give the whole build's
training time. From the finished table it reports the accuracy distributions (overall, per
edit-distance class, train and val networks), the time per network, the Spearman correlation
of accuracy with #params, the per-feature normalisation of the preprocessed outputs and the
table's size, and writes them to ``--out`` (bench/results/nas-io.json).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
from _common import write_json

from narbuild import Workspace

NARBUILD = str(Path(sys.executable).with_name("narbuild"))


def timed(args: list[str]) -> tuple[dict, dict]:
    """Run ``narbuild args`` in a fresh interpreter: its JSON summary and its cost."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run([NARBUILD, "--json", *args], check=True, capture_output=True,
                         text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cost = {"wall_s": round(time.perf_counter() - start, 2),
            "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
            "peak_rss_mb": round(after.ru_maxrss / 1024, 1)}
    return json.loads(out.stdout), cost


def stats(x: np.ndarray) -> dict:
    q = np.percentile(x, [0, 5, 25, 50, 75, 95, 100])
    return {"n": len(x), "mean": round(float(x.mean()), 4), "std": round(float(x.std()), 4),
            **{k: round(float(v), 4) for k, v in
               zip(["min", "p5", "p25", "median", "p75", "p95", "max"], q)}}


def histogram(x: np.ndarray, edges: list[float]) -> dict:
    counts, _ = np.histogram(x, bins=edges)
    return {f"{a:.2f}-{b:.2f}": int(c) for a, b, c in zip(edges, edges[1:], counts)}


def describe(ws: Workspace) -> dict:
    """Figures of the finished nas_io table."""
    from scipy.stats import spearmanr

    table = ws.table("nas_io")
    rows = table.read(["split", "cluster", "accuracy", "unseen_accuracy", "params", "seconds",
                       "features", "val_io"])
    acc = rows.column("accuracy").to_numpy()
    split = np.array(rows.column("split").to_pylist())
    cluster = rows.column("cluster").to_numpy()
    params = rows.column("params").to_numpy()
    f = rows.column("features")[0].as_py()
    result = {
        "rows": rows.num_rows, "features": f,
        "accuracy": stats(acc), "accuracy_histogram": histogram(acc, [0.0, 0.5, 0.8, 0.9, 0.92,
                                                                      0.94, 0.96, 0.98, 1.0]),
        "accuracy_train_networks": stats(acc[split == "train"]),
        "accuracy_val_networks": stats(acc[split == "val"]),
        "unseen_accuracy": stats(rows.column("unseen_accuracy").to_numpy()),
        "accuracy_per_class": {int(c): stats(acc[cluster == c]) for c in np.unique(cluster)},
        "spearman_accuracy_params": round(float(spearmanr(acc, params).statistic), 4),
        "params": stats(params.astype(float)),
        "seconds_per_network": stats(rows.column("seconds").to_numpy()),
        "training_seconds_total": round(float(rows.column("seconds").to_numpy().sum()), 1),
        "table_mb": round(sum(p.stat().st_size for p in table.parts()) / 2 ** 20, 1),
    }
    if rows.column("val_io").null_count == 0:
        io = pc.list_flatten(rows.column("val_io")).to_numpy().reshape(rows.num_rows, -1, f + 1)
        train = io[split == "train"].reshape(-1, f + 1)
        result["val_io_train_feature_mean_abs_max"] = float(np.abs(train.mean(0)).max())
        result["val_io_train_feature_std_range"] = [float(train.std(0).min()),
                                                    float(train.std(0).max())]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--train", type=int, default=608)
    parser.add_argument("--val", type=int, default=77)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--width", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "nas-io.json")
    a = parser.parse_args()
    ws_args = ["-w", str(a.workspace)]
    result: dict = {}
    if not (a.workspace / "nas").is_dir():
        result["gen_nas"], result["gen_nas_cost"] = timed([*ws_args, "gen-nas"])
    command = ["nas-io", "--train", str(a.train), "--val", str(a.val), "--epochs",
               str(a.epochs), "--width", str(a.width), "--seed", str(a.seed)]
    summary, cost = timed([*ws_args, *command])
    result.update(command="narbuild " + " ".join(command), nas_io_cost=cost, nas_io=summary,
                  table=describe(Workspace(a.workspace)))
    write_json(a.out, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
