"""One fixed weight for ``wl-metric+wl-fam``, as a search default needs, chosen on validation.

Benchmark v2 chooses a fusion's weight per task. ``search`` ranks with one weight per dataset.
This script reads the trained wl-metric vectors that ``narbuild eval --protocol all`` cached
(same recipe and seeds; nothing is trained when the cache is warm). For each weight of the grid
it scores the fusion with wl-fam at search's rounds on every task's validation and test queries.
The weight with the best MAP@20 over the pooled validation queries of ``closed`` and ``open``
(every seed) is chosen. ``variants`` has no validation queries of its own; it is scored with
``closed``'s training. The NAS set has only ``closed`` (``narbuild eval --dataset nas
--protocol closed``), which chooses alone. The test figures of every weight are written beside
the choice, so a reader can see that the choice did not look at them.

    python bench/bench_fusion_fixed.py --workdir WS [--dataset nas] [--seeds 0 1 2] \
        [--folds 3] [--out bench/results/fusion-fixed-wl-metric.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import scipy.sparse as sp
import torch
from _common import write_json

from narbuild.benchmark.protocols import protocol_tasks
from narbuild.benchmark.run import FUSION_GRID, Bench, score_ranked
from narbuild.benchmark.suite import load_catalogue
from narbuild.encoder.metrics import bootstrap_ci, rank_rows, unit_rows
from narbuild.encoder.train import TrainConfig
from narbuild.encoder.wl import WL_METHODS
from narbuild.workspace import Workspace

PROTOCOLS = {"real": ("closed", "open", "variants"), "nas": ("closed",)}
SELECTED_ON = {"real": ("closed", "open"), "nas": ("closed",)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--dataset", choices=sorted(PROTOCOLS), default="real")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    ws, start = Workspace(args.workdir), time.perf_counter()
    report = json.loads((ws.root / "reports" / "eval-protocols.json").read_text())
    cfg = TrainConfig(**report["protocol"]["config"])  # the eval's, so its cache is read
    protocols, selected_on = PROTOCOLS[args.dataset], SELECTED_ON[args.dataset]
    inputs, cat, info = load_catalogue(ws, args.dataset, args.dataset == "real", None)
    records = inputs.records
    tasks = protocol_tasks(cat, protocols, records.split, records.labels, args.folds)
    bench = Bench(inputs, cat, cfg, torch.device("cpu"), ws.root / "cache" / "eval")
    rounds = WL_METHODS["wl-fam"]
    validation = {w: [] for w in FUSION_GRID}
    test = {p: {w: [] for w in FUSION_GRID} for p in protocols}
    for task in tasks:  # per query, the mean over seeds (as the eval report's intervals)
        wl = bench.vectors("wl-fam", task, 0, rounds)
        learned = [bench.vectors("wl-metric", task, seed) for seed in args.seeds]
        val = fused_map20(learned, wl, cat, task.validation)
        got = fused_map20(learned, wl, cat, task.queries)
        for w in FUSION_GRID:
            if task.protocol in selected_on:
                validation[w].append(val[w])
            test[task.protocol][w].append(got[w])
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
    for protocol in protocols:
        print(protocol, {w: r["map@20"] for w, r in rows[protocol].items()})
    if args.out:
        write_json(args.out, {"dataset": args.dataset, "data_hash": info.get("catalogue_hash"),
                              "wl_fam_rounds": rounds, "seeds": args.seeds, "folds": args.folds,
                              "selected_on": list(selected_on),
                              "validation_map20": {str(w): round(v, 4) for w, v in pooled.items()},
                              "chosen_weight": chosen, "test_map20": rows,
                              "seconds": round(time.perf_counter() - start)})


def fused_map20(learned: list[np.ndarray], wl: sp.csr_matrix, cat, queries: np.ndarray,
                chunk: int = 512) -> dict[float, np.ndarray]:
    """Per-query MAP@20 (mean over the seeds' ``learned`` vectors) of the fusion with ``wl`` at
    every weight of the grid. The fused cosine is ``w`` x the learned one plus ``1 - w`` x
    wl's (what :func:`fuse_with_wl`'s rows give), so each chunk's two cosine matrices are
    computed once and mixed per weight, then ranked as :func:`score` ranks."""
    out = {w: [] for w in FUSION_GRID}
    wl_unit = unit_rows(wl)
    units = [unit_rows(v) for v in learned]
    for start in range(0, len(queries), chunk):
        q = np.asarray(queries[start:start + chunk], dtype=np.int64)
        wl_sims = torch.from_numpy((wl_unit[q] @ wl_unit.T).toarray().astype(np.float32))
        learned_sims = [u[torch.from_numpy(q)] @ u.T for u in units]
        blocked = torch.from_numpy(cat.excluded(q))
        for w in FUSION_GRID:
            per_seed = []
            for sims in learned_sims:
                mixed = w * sims + (1 - w) * wl_sims
                mixed[blocked] = -torch.inf
                ranked = rank_rows(mixed, q, 20)
                per_seed.append(score_ranked(ranked, cat, q, (20,))["map@20"])
            out[w].append(np.mean(per_seed, axis=0))
    return {w: np.concatenate(v) if v else np.zeros(0) for w, v in out.items()}


if __name__ == "__main__":
    main()
