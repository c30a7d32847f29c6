"""Benchmark the offline catalogue per source: crawl time, trace time and coverage, and the
funnel ids -> traced ok -> distinct records -> families.

    python bench/bench_sources.py --workdir WS                # crawl, trace (2 workers), preprocess
    python bench/bench_sources.py --workdir WS --skip-trace   # funnel of an already traced WS
    python bench/bench_sources.py --workdir WS --out bench/results/sources.json
    python bench/bench_sources.py --workdir WS --source mmpretrain --workers 1   # one source

A new WS is crawled from scratch; the trace resumes (re-running it measures only what is left),
so time the whole catalogue in a fresh folder. Figures go into bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

from _common import write_json

from narbuild import Workspace, crawl
from narbuild.cards.sources import funnel, manifest_sources, source_of
from narbuild.tracing import TraceOptions, trace_catalog


def timed_crawl(ws: Workspace, sources: list[str] | None = None) -> dict:
    start = time.perf_counter()
    summary = crawl(ws, sources)
    return {"seconds": round(time.perf_counter() - start, 1), "ids": summary.per_source,
            "missing": summary.missing}


def timed_trace(ws: Workspace, workers: int) -> dict:
    start = time.perf_counter()
    s = trace_catalog(ws, TraceOptions(workers=workers))
    return {"workers": workers, "seconds": round(time.perf_counter() - start, 1),
            "traced": s.traced, "copied_from_twins": s.cached, "ok": s.ok, "errors": s.errors,
            "peak_worker_rss_mb": s.peak_worker_rss_mb,
            "peak_worker_private_mb": s.peak_worker_private_mb,
            "fallbacks": s.fallbacks}


def timed_preprocess(ws: Workspace) -> dict:
    from narbuild.preprocess import preprocess

    start = time.perf_counter()
    preprocess(ws, "real")
    return {"seconds": round(time.perf_counter() - start, 1)}


def per_source(ws: Workspace) -> dict:
    """Coverage, distinct raw graphs, trace seconds and the top error reasons per source."""
    known = manifest_sources({"manifest": ws.table("manifest").read(["model_id", "source"])})
    rows = ws.table("graphs").read(["model_id", "status", "error", "graph_hash", "wall_time_s",
                                    "peak_rss_mb"]).to_pylist()
    by: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by[source_of(r["model_id"], known)].append(r)
    out = {}
    for source, rs in sorted(by.items()):
        ok = [r for r in rs if r["status"] == "ok"]
        reasons = Counter((r["error"] or "")[:100] for r in rs if r["status"] != "ok")
        out[source] = {
            "rows": len(rs), "ok": len(ok), "coverage": round(len(ok) / len(rs), 4),
            "distinct_graphs": len({r["graph_hash"] for r in ok}),
            "trace_seconds": round(sum(r["wall_time_s"] or 0 for r in rs), 1),
            "slowest": max(rs, key=lambda r: r["wall_time_s"] or 0)["model_id"],
            "top_errors": dict(reasons.most_common(5))}
    return out


def tables(ws: Workspace) -> dict:
    return {name: ws.table(name).read() for name in ("manifest", "graphs", "processed")
            if ws.table(name).exists()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-trace", action="store_true")
    parser.add_argument("--source", action="append", default=None,
                        help="crawl only this source (repeatable; default: every offline one)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    fresh = not Path(args.workdir, "manifest").exists()
    ws = Workspace(args.workdir, create=True)
    result: dict = {}
    if fresh:
        result["crawl"] = timed_crawl(ws, args.source)
    if not args.skip_trace:
        result["trace"] = timed_trace(ws, args.workers)
        result["preprocess"] = timed_preprocess(ws)
    result["per_source"] = per_source(ws)
    result["funnel"] = funnel(tables(ws))
    text = json.dumps(result, indent=1, default=str)
    print(text)
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
