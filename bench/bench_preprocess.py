"""Benchmark `narbuild preprocess`: wall and CPU time over a traced workspace.

    python bench/bench_preprocess.py /path/to/workspace               # its graphs (+ nas) table
    python bench/bench_preprocess.py /path/to/workspace --scale 3400  # scaled to N graphs
    python bench/bench_preprocess.py /path/to/workspace --dataset nas

The workspace's tables are copied into a temporary workspace first (the source is never
written). ``--scale N`` cycles through the ok rows until there are N, each copy with its own raw
graph hash, so every one is processed (none is skipped as an identical trace) — a stand-in for a
catalog that is not fully traced yet; records still collapse by cleaned-graph hash. Prints one
JSON line (the run's figures and the stage's summary); ``--out`` appends it to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from narbuild import Workspace
from narbuild.preprocess import preprocess


def copy_workspace(source: Path, scale: int | None) -> Workspace:
    """A temporary workspace with the source's input tables (the graphs table scaled to
    ``scale`` rows when given)."""
    root = Path(tempfile.mkdtemp(prefix="narbuild-bench-")) / "ws"
    ws = Workspace(root, create=True)
    for name in ("manifest", "graphs", "nas"):
        if (source / name).is_dir():
            shutil.copytree(source / name, root / name)
    if scale:
        graphs = ws.table("graphs")
        table = graphs.read()
        ok = table.filter(pc.equal(table.column("status"), "ok"))
        copies = [ok.take(pa.array([i % ok.num_rows for i in range(scale)]))]
        big = pa.concat_tables(copies)
        suffix = [f"#{i // ok.num_rows}" if i >= ok.num_rows else "" for i in range(scale)]
        for column in ("model_id", "graph_hash"):
            values = [v + s for v, s in zip(big.column(column).to_pylist(), suffix)]
            big = big.set_column(big.schema.get_field_index(column), column,
                                 pa.array(values, pa.string()))
        shutil.rmtree(graphs.path)
        graphs.append(big)
        _scale_manifest(ws, suffix, ok.column("model_id").to_pylist())
    return ws


def _scale_manifest(ws: Workspace, suffix: list[str], ids: list[str]) -> None:
    """Give each copy the manifest row of its original, so it is labelled the same way."""
    manifest = ws.table("manifest")
    if not manifest.exists():
        return
    rows = {r["model_id"]: r for r in manifest.read().to_pylist()}
    extra = [dict(rows[ids[i % len(ids)]], model_id=ids[i % len(ids)] + s)
             for i, s in enumerate(suffix) if s and ids[i % len(ids)] in rows]
    manifest.append(extra)


def cpu_seconds() -> float:
    self_, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                        resource.RUSAGE_CHILDREN))
    return self_.ru_utime + self_.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--dataset", default="real", choices=["real", "nas", "all"])
    parser.add_argument("--scale", type=int, default=None, help="scale the graphs table to N rows")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--splitter", default="motif")
    parser.add_argument("--out", type=Path, default=None, help="append the JSON line here")
    args = parser.parse_args()

    ws = copy_workspace(args.workspace, args.scale)
    cpu, start = cpu_seconds(), time.perf_counter()
    summary = preprocess(ws, args.dataset, args.steps, args.splitter, workers=args.workers)
    wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    result = {
        "bench": "preprocess", "workspace": str(args.workspace), "dataset": args.dataset,
        "scale": args.scale, "workers": args.workers, "steps": args.steps,
        "splitter": args.splitter, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "cores": os.cpu_count(), "load_avg": os.getloadavg(), "python": platform.python_version(),
        "summary": summary.as_dict(),
    }
    shutil.rmtree(ws.root.parent, ignore_errors=True)
    line = json.dumps(result)
    print(line)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(line + "\n")


if __name__ == "__main__":
    main()
