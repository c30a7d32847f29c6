"""Check that a refactor changed no graph: re-trace a fixed sample of a traced workspace's models
with the code checked out now, and compare graph hashes, FLOPs, parameters and ladder steps.

    python bench/check_graph_hashes.py --workdir WS --sample 300 --out bench/results/hashes.json

The sample is the ``--sample`` traced-ok model ids with the smallest sha256 of their id (fixed
for a given workspace, spread over every source); the re-trace runs in a fresh workspace that
holds only WS's manifest. Exits non-zero when any graph differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _common import write_json

from narbuild import Workspace
from narbuild.tracing import TraceOptions, trace_catalog

FIELDS = ("graph_hash", "flops", "params", "fallback")


def sample_ids(ws: Workspace, size: int) -> list[str]:
    rows = ws.table("graphs").read(["model_id", "status"]).to_pylist()
    ok = sorted({r["model_id"] for r in rows if r["status"] == "ok"},
                key=lambda m: hashlib.sha256(m.encode()).hexdigest())
    return ok[:size]


def read(ws: Workspace, ids: set[str]) -> dict[str, dict]:
    rows = ws.table("graphs").read(["model_id", *FIELDS]).to_pylist()
    return {r["model_id"]: {f: r[f] for f in FIELDS} for r in rows if r["model_id"] in ids}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--ids", nargs="*", default=[],
                        help="also check these model ids (e.g. the models a change touches)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()
    base = Workspace(args.workdir)
    ids = sample_ids(base, args.sample) + args.ids
    before = read(base, set(ids))
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Workspace(Path(tmp) / "ws", create=True)
        shutil.copytree(Path(args.workdir) / "manifest", Path(tmp) / "ws" / "manifest",
                        dirs_exist_ok=True)
        start = time.perf_counter()
        trace_catalog(fresh, TraceOptions(workers=args.workers), model_ids=ids)
        seconds = time.perf_counter() - start
        after = read(fresh, set(ids))
    differ = {m: {"before": before[m], "after": after.get(m)} for m in ids
              if after.get(m) != before[m]}
    result = {"workspace": args.workdir, "sample": len(ids),
              "sources": dict(Counter(m.split(":", 1)[0] for m in ids)),
              "seconds": round(seconds, 1), "same": len(ids) - len(differ), "differ": differ}
    print(json.dumps(result, indent=1))
    if args.out:
        write_json(args.out, result)
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
