"""Benchmark v2 on a workspace, with a timestamped log of every (dataset, protocol, method,
seed) finished; the report (``reports/eval-protocols.{json,md}``) is copied to ``--out``.

Trained vectors are kept under ``<workdir>/cache/eval``, so method groups can be run one after
another and a last run with every method reads them back:

    python bench/bench_protocols.py --workdir WS --methods wl,wl-fam --folds 3 --dim 64 \\
        --out bench/results/protocols-real-cpu
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from narbuild.benchmark.report import write_protocol_report
from narbuild.benchmark.suite import evaluate_protocols
from narbuild.encoder.train import TrainConfig
from narbuild.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--datasets", default="real,nas")
    parser.add_argument("--protocols", default="closed,loo,open,variants")
    parser.add_argument("--methods", required=True)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--motif-epochs", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out")
    args = parser.parse_args()
    ws, start = Workspace(args.workdir), time.perf_counter()

    def log(*what: object) -> None:
        print(f"{time.perf_counter() - start:8.1f}s", *what, flush=True)

    cfg = TrainConfig(dim=args.dim, epochs=args.epochs, motif_epochs=args.motif_epochs)
    report = evaluate_protocols(ws, args.datasets.split(","), args.protocols.split(","),
                                args.methods.split(","), [int(s) for s in args.seeds.split(",")],
                                cfg, args.device, args.folds, on_run=log, on_step=log)
    paths = write_protocol_report(ws, report)
    log("report", paths["markdown"])
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        for path in paths.values():
            shutil.copy(path, Path(args.out) / path.name)


if __name__ == "__main__":
    main()
