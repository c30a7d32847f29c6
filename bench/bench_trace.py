"""Benchmark `narbuild trace`: models/minute with 1 and 2 workers, peak worker memory, coverage.

    python bench/bench_trace.py                 # a fixed sample: every 10th manifest row by id
    python bench/bench_trace.py --every 1       # the whole offline catalog
    python bench/bench_trace.py --workers 2     # one worker count only

Each run traces into a fresh workspace (so nothing is cached) and prints one JSON line per run;
--out appends them to a file. Figures go into bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from _common import append_line

from narbuild import Workspace, crawl
from narbuild.tracing import TraceOptions, trace_catalog


def sample_manifest(every: int) -> tuple[Path, list[str]]:
    root = Path(tempfile.mkdtemp(prefix="narbuild-bench-")) / "catalog"
    ws = Workspace(root, create=True)
    crawl(ws)
    ids = sorted(ws.table("manifest").keys())[::every]
    return root, ids


def run(manifest_root: Path, ids: list[str], workers: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix="narbuild-bench-")) / "ws"
    ws = Workspace(root, create=True)
    shutil.copytree(manifest_root / "manifest", root / "manifest")
    start = time.perf_counter()
    summary = trace_catalog(ws, TraceOptions(workers=workers), ids)
    seconds = time.perf_counter() - start
    rows = ws.table("graphs").read(["model_id", "status", "wall_time_s"]).to_pylist()
    per_source = Counter(r["model_id"].split(":")[0] for r in rows)
    ok_source = Counter(r["model_id"].split(":")[0] for r in rows if r["status"] == "ok")
    shutil.rmtree(root.parent)
    return {
        "workers": workers, "models": len(ids), "traced": summary.traced,
        "copied_from_twins": summary.cached, "ok": summary.ok, "errors": summary.errors,
        "ok_share": round(summary.ok / max(len(ids), 1), 4),
        "ok_by_source": {s: f"{ok_source[s]}/{n}" for s, n in per_source.items()},
        "seconds": round(seconds, 1),
        "models_per_minute": round(60 * len(ids) / seconds, 1),
        "peak_worker_rss_mb": summary.peak_worker_rss_mb,
        "fallbacks": summary.fallbacks, "top_errors": summary.top_errors,
        "machine": f"{platform.machine()} {__import__('os').cpu_count()} cores",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=int, default=10, help="trace every N-th manifest row")
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    manifest_root, ids = sample_manifest(args.every)
    for workers in args.workers:
        result = run(manifest_root, ids, workers)
        print(json.dumps(result), flush=True)
        if args.out:
            append_line(args.out, result)


if __name__ == "__main__":
    main()
