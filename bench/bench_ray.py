"""`narbuild trace --executor ray` against a local run on the same sample, and a simulated
makespan for a Hub-sized trace on a cluster.

    python bench/bench_ray.py --every 10 --shards 2 4 --out bench/results/ray.json

1. Crawl the offline catalog and keep every N-th manifest row (bench_trace.py's sample).
2. Trace it locally with ``--workers 2``, then with ``--executor ray --num-shards K --workers 1``
   on a local Ray instance of this machine's CPUs (Ray's start-up included), each into a fresh
   workspace; check that both give the same status and graph hash per model id.
3. Simulate list scheduling of 500k models on 64 nodes x 16 cores from the measured per-model
   ``wall_time_s`` and the measured shard start-up cost; the same model predicts the measured
   runs here, which validates it.
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
from narbuild.tracing import TraceOptions, trace_catalog


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


def local(manifest_root: Path, ids: list[str]) -> tuple[dict, Workspace]:
    ws = fresh(manifest_root)
    start = time.perf_counter()
    summary = trace_catalog(ws, TraceOptions(workers=2), ids)
    return {"seconds": round(time.perf_counter() - start, 1), "traced": summary.traced,
            "ok": summary.ok}, ws


def on_ray(manifest_root: Path, ids: list[str], shards: int) -> tuple[dict, Workspace]:
    ws = fresh(manifest_root)
    args = [f"--include={i}" for i in ids]
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "narbuild.cli", "-w", str(ws.root), "--json",
                           "trace", "--executor", "ray", "--num-shards", str(shards),
                           "--workers", "1", *args], capture_output=True, text=True, env=env,
                          check=False)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(done.stderr)
    summary = json.loads(done.stdout)
    return {"shards": shards, "seconds": round(seconds, 1), "traced": summary["traced"],
            "ok": summary["ok"], "resubmitted": summary["resubmitted"]}, ws


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


def makespan(times: np.ndarray, models: int, slots: int, shard_size: int, startup: float,
             seed: int = 0) -> float:
    """Greedy list scheduling: shards of ``shard_size`` models (per-model seconds drawn from
    ``times``), each paying ``startup``, onto ``slots`` workers; the last finish time."""
    rng = np.random.default_rng(seed)
    n_shards = -(-models // shard_size)
    sizes = np.full(n_shards, shard_size)
    sizes[-1] = models - shard_size * (n_shards - 1)
    work = np.array([startup + rng.choice(times, s).sum() for s in sizes])
    free = [0.0] * slots
    for w in work:  # in submission order, each to the first free slot
        heapq.heapreplace(free, free[0] + w)
    return max(free)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--shards", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    manifest_root, ids = sample(args.every)
    base, base_ws = local(manifest_root, ids)
    reference = table(base_ws)
    times = np.array([r["wall_time_s"] for r in base_ws.table("graphs").read(
        ["wall_time_s"]).to_pylist() if r["wall_time_s"] is not None])
    result = {"models": len(ids), "local_workers_2": base, "ray": [], "machine":
              f"{platform.machine()} {os.cpu_count()} cores"}
    for shards in args.shards:
        run, ws = on_ray(manifest_root, ids, shards)
        run["same_table_as_local"] = table(ws) == reference
        run["overhead"] = round(run["seconds"] / base["seconds"] - 1, 3)
        run["shard_startup_s"] = round(shard_startup_s(ws), 1)
        run["predicted_s"] = round(makespan(times, len(ids), os.cpu_count() or 1,
                                            -(-len(ids) // shards), run["shard_startup_s"]), 1)
        result["ray"].append(run)
        print(json.dumps(run), flush=True)
    startup = max(r["shard_startup_s"] for r in result["ray"])
    result["simulation"] = {
        "assumptions": "500,000 models drawn from this sample's per-model wall_time_s; 64 "
                       "nodes x 16 cores, one worker per shard; shards of 500 models, each "
                       f"paying the measured start-up ({startup:.1f} s); greedy list "
                       "scheduling in submission order; no Hub download time",
        "makespan_h": round(makespan(times, 500_000, 64 * 16, 500, startup) / 3600, 2),
        "one_machine_2_workers_h": round(makespan(times, 500_000, 2, 500, startup) / 3600, 1),
        "mean_model_s": round(float(times.mean()), 3),
    }
    print(json.dumps(result["simulation"]), flush=True)
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
