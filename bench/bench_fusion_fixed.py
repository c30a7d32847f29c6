"""One fixed weight for ``wl-metric+wl-fam``, as a search default needs, chosen on validation.

Benchmark v2 chooses a fusion's weight per task. ``search`` ranks with one weight per dataset.
This script reads the trained wl-metric vectors that ``narbuild eval --protocol all`` cached
(same recipe and seeds; nothing is trained when the cache is warm). For each weight of the grid
it scores the fusion with wl-fam at search's rounds on every task's validation and test queries.
The weight with the best MAP@20 over the pooled validation queries of ``closed`` and ``open``
(every seed) is chosen. ``variants`` has no validation queries of its own; it is scored with
``closed``'s training. The test figures of every weight are written beside the choice, so a
reader can see that the choice did not look at them.

    python bench/bench_fusion_fixed.py --workdir WS [--seeds 0 1 2] [--folds 3] \
        [--out bench/results/fusion-fixed-wl-metric.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from _common import write_json

from narbuild.benchmark.protocols import protocol_tasks
from narbuild.benchmark.run import FUSION_GRID, Bench, score
from narbuild.benchmark.suite import load_catalogue
from narbuild.encoder.metrics import bootstrap_ci
from narbuild.encoder.train import TrainConfig
from narbuild.encoder.wl import WL_METHODS, fuse_with_wl
from narbuild.workspace import Workspace

PROTOCOLS = ("closed", "open", "variants")
SELECTED_ON = ("closed", "open")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    ws, start = Workspace(args.workdir), time.perf_counter()
    report = json.loads((ws.root / "reports" / "eval-protocols.json").read_text())
    cfg = TrainConfig(**report["protocol"]["config"])  # the eval's, so its cache is read
    inputs, cat, info = load_catalogue(ws, "real", True, None)
    records = inputs.records
    tasks = protocol_tasks(cat, PROTOCOLS, records.split, records.labels, args.folds)
    bench = Bench(inputs, cat, cfg, torch.device("cpu"), ws.root / "cache" / "eval")
    rounds = WL_METHODS["wl-fam"]
    validation = {w: [] for w in FUSION_GRID}
    test = {p: {w: [] for w in FUSION_GRID} for p in PROTOCOLS}
    for task in tasks:  # per query, the mean over seeds (as the eval report's intervals)
        wl = bench.vectors("wl-fam", task, 0, rounds)
        learned = [bench.vectors("wl-metric", task, seed) for seed in args.seeds]
        for w in FUSION_GRID:
            fused = [fuse_with_wl(v, wl, w) for v in learned]
            scored = [(score(f, cat, task.validation)["map@20"], score(f, cat, task.queries)["map@20"])
                      for f in fused]
            if task.protocol in SELECTED_ON:
                validation[w].append(np.mean([v for v, _ in scored], axis=0))
            test[task.protocol][w].append(np.mean([t for _, t in scored], axis=0))
        print(task.protocol, "task done", round(time.perf_counter() - start), "s", flush=True)
    pooled = {w: float(np.mean(np.concatenate(v))) for w, v in validation.items()}
    chosen = max(pooled, key=pooled.get)
    rows = {}
    for protocol, by_weight in test.items():
        rows[protocol] = {}
        for w, values in by_weight.items():
            per_query = np.concatenate(values)
            lo, hi = bootstrap_ci(per_query)
            rows[protocol][str(w)] = {"map@20": round(float(per_query.mean()), 4),
                                      "ci95": [round(lo, 4), round(hi, 4)]}
    print("validation MAP@20 per weight:", {w: round(v, 4) for w, v in pooled.items()})
    print("chosen weight:", chosen)
    for protocol in PROTOCOLS:
        print(protocol, {w: r["map@20"] for w, r in rows[protocol].items()})
    if args.out:
        write_json(args.out, {"data_hash": info.get("catalogue_hash"), "wl_fam_rounds": rounds,
                              "seeds": args.seeds, "folds": args.folds,
                              "selected_on": list(SELECTED_ON),
                              "validation_map20": {str(w): round(v, 4) for w, v in pooled.items()},
                              "chosen_weight": chosen, "test_map20": rows,
                              "seconds": round(time.perf_counter() - start)})


if __name__ == "__main__":
    main()
