"""`narbuild trace --executor ray` against a local run on the same sample, and a simulated
makespan for a Hub-sized trace on a cluster.

    python bench/bench_ray.py --every 10 --runs 1x2 2x1 --out bench/results/ray.json

1. Crawl the offline catalog and keep every N-th manifest row (bench_trace.py's sample).
2. Trace it with the CLI in a fresh process, each into a fresh workspace: locally with
   ``--workers 2``, then for each run ``SxW`` with ``--executor ray --num-shards S --workers W``
   on a local Ray instance of this machine's CPUs (Ray's start-up included); check that every
   run gives the same status and graph hash per model id.
3. Simulate list scheduling of 500k models on 64 nodes x 16 cores from the measured per-model
   ``wall_time_s`` plus a per-model overhead calibrated on the local run, and the measured shard
   start-up cost; the same model predicts the measured Ray runs here, which validates it.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import write_json

from narbuild import Workspace, crawl


def sample(every: int) -> tuple[Path, list[str]]:
    root = Path(tempfile.mkdtemp(prefix="narbuild-bench-")) / "catalog"
    ws = Workspace(root, create=True)
    crawl(ws)
    return root, sorted(ws.table("manifest").keys())[::every]


def fresh(manifest_root: Path) -> Workspace:
    root = Path(tempfile.mkdtemp(prefix="narbuild-bench-")) / "ws"
    ws = Workspace(root, create=True)
    shutil.copytree(manifest_root / "manifest", root / "manifest")
    return ws


def table(ws: Workspace) -> dict[str, tuple]:
    rows = ws.table("graphs").read(["model_id", "status", "graph_hash", "wall_time_s"])
    return {r["model_id"]: (r["status"], r["graph_hash"]) for r in rows.to_pylist()}


def cli_trace(manifest_root: Path, ids: list[str], *args: str) -> tuple[dict, float, Workspace]:
    """``narbuild trace ARGS`` of ``ids`` in a fresh process and workspace: (its JSON summary,
    seconds from outside, the workspace)."""
    ws = fresh(manifest_root)
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "narbuild.cli", "-w", str(ws.root), "--json",
                           "trace", *args, *[f"--include={i}" for i in ids]],
                          capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout), seconds, ws


def local(manifest_root: Path, ids: list[str]) -> tuple[dict, Workspace]:
    summary, seconds, ws = cli_trace(manifest_root, ids, "--workers", "2")
    return {"seconds": round(seconds, 1), "traced": summary["traced"], "ok": summary["ok"]}, ws


def on_ray(manifest_root: Path, ids: list[str], shards: int, workers: int
           ) -> tuple[dict, Workspace]:
    summary, seconds, ws = cli_trace(manifest_root, ids, "--executor", "ray", "--num-shards",
                                     str(shards), "--workers", str(workers))
    return {"shards": shards, "workers": workers, "seconds": round(seconds, 1),
            "traced": summary["traced"], "ok": summary["ok"],
            "resubmitted": summary["resubmitted"]}, ws


def shard_startup_s(ws: Workspace) -> float:
    """Seconds a shard spends before its first model: its log's first line to the first
    part file, minus nothing else (median over shards)."""
    starts = []
    for folder in (ws.root / "graphs").glob("shard-*"):
        log = ws.root / "logs" / f"trace-{folder.name}.log"
        if not log.is_file():
            continue
        stamp = log.read_text().split("--- ", 2)[1][:19]
        began = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))
        rows = Workspace(ws.root).table("graphs").read(["model_id", "traced_at", "wall_time_s"],
                                                       subdir=folder.name).to_pylist()
        if rows:
            first = min(r["traced_at"].timestamp() - r["wall_time_s"] for r in rows)
            starts.append(max(first - began, 0.0))
    return float(np.median(starts)) if starts else 0.0


def makespan(times: np.ndarray, models: int, cpus: int, shard_size: int, startup: float,
             workers: int = 1, seed: int = 0) -> float:
    """Greedy list scheduling: shards of ``shard_size`` models (per-model seconds drawn from
    ``times``), each paying ``startup`` and then sharing its models among its ``workers``,
    onto ``cpus // workers`` shard slots; the last finish time."""
    rng = np.random.default_rng(seed)
    n_shards = -(-models // shard_size)
    sizes = np.full(n_shards, shard_size)
    sizes[-1] = models - shard_size * (n_shards - 1)
    work = [startup + _list_schedule(rng.choice(times, s), workers) for s in sizes]
    return _list_schedule(np.array(work), max(cpus // workers, 1))


def _list_schedule(jobs: np.ndarray, slots: int) -> float:
    """Each job in order to the first free of ``slots``; the last finish time."""
    free = [0.0] * slots
    for job in jobs:
        heapq.heapreplace(free, free[0] + job)
    return max(free)


def per_model_overhead(times: np.ndarray, seconds: float, workers: int, startup: float
                       ) -> float:
    """The seconds each model costs outside its ``wall_time_s`` (the fork, the result's trip
    to the parent, the part writes) that make list scheduling reproduce a measured run."""
    low, high = 0.0, 10.0
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if startup + _list_schedule(times + mid, workers) < seconds \
            else (low, mid)
    return low


def simulate(result: dict, times: np.ndarray) -> None:
    """Calibrate the per-model overhead on the local run, predict each Ray run with it (the
    validation) and simulate a Hub-sized trace on a cluster; into ``result``."""
    startup = max(r["shard_startup_s"] for r in result["ray"])
    extra = per_model_overhead(times, result["local_workers_2"]["seconds"], 2, startup)
    cost = times + extra
    for run in result["ray"]:
        run["predicted_s"] = round(makespan(cost, result["models"], os.cpu_count() or 1,
                                            -(-result["models"] // run["shards"]),
                                            run["shard_startup_s"], run["workers"]), 1)
    result["simulation"] = {
        "assumptions": "500,000 models drawn from this sample's per-model wall_time_s plus the "
                       f"per-model overhead ({extra:.3f} s) that makes the model reproduce the "
                       "local run; 64 nodes x 16 cores; greedy list scheduling in submission "
                       f"order; each shard pays the measured start-up ({startup:.1f} s); no Hub "
                       "download time. makespan_h: shards of 500 models with one worker each; "
                       "makespan_h_one_shard_per_node: 64 shards of 7,813 models, each with 16 "
                       "workers sharing its models",
        "per_model_overhead_s": round(extra, 3),
        "makespan_h": round(makespan(cost, 500_000, 64 * 16, 500, startup) / 3600, 2),
        "makespan_h_one_shard_per_node": round(makespan(
            cost, 500_000, 64 * 16, -(-500_000 // 64), startup, workers=16) / 3600, 2),
        "one_machine_2_workers_h": round(makespan(cost, 500_000, 2, 500, startup) / 3600, 1),
        "mean_model_s": round(float(times.mean()), 3),
    }


def wall_times(ws: Workspace) -> np.ndarray:
    return np.array([r["wall_time_s"] for r in ws.table("graphs").read(
        ["wall_time_s"]).to_pylist() if r["wall_time_s"] is not None])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--runs", nargs="+", default=["1x2", "2x1"],
                        help="Ray runs as SHARDSxWORKERS (workers per shard)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    manifest_root, ids = sample(args.every)
    base, base_ws = local(manifest_root, ids)
    reference = table(base_ws)
    result = {"models": len(ids), "local_workers_2": base, "ray": [], "machine":
              f"{platform.machine()} {os.cpu_count()} cores"}
    for spec in args.runs:
        shards, workers = (int(x) for x in spec.split("x"))
        run, ws = on_ray(manifest_root, ids, shards, workers)
        run["same_table_as_local"] = table(ws) == reference
        run["overhead"] = round(run["seconds"] / base["seconds"] - 1, 3)
        run["shard_startup_s"] = round(shard_startup_s(ws), 1)
        result["ray"].append(run)
        print(json.dumps(run), flush=True)
    simulate(result, wall_times(base_ws))
    print(json.dumps(result["simulation"]), flush=True)
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
