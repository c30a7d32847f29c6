"""A sweep of the NAR recipe, scored on validation queries only, to pick the shipped recipe.

Each setting trains on a task's fitted rows and is scored on its validation queries (cut from
the training side; benchmark v2's ``closed`` task, or each ``open`` fold with ``--protocol
open``). The test queries are never scored here, so the pick can be reported on them after.

    python bench/sweep_encoder.py --workdir WS --dataset real --device cuda --out DIR
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

from narbuild.benchmark.protocols import protocol_tasks
from narbuild.benchmark.run import Bench, score
from narbuild.benchmark.suite import load_catalogue
from narbuild.encoder.train import TrainConfig, resolve_device
from narbuild.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--dataset", default="real")
    parser.add_argument("--protocol", default="closed", choices=["closed", "open"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    inputs, cat, info = load_catalogue(Workspace(args.workdir), args.dataset, False)
    records = inputs.records
    tasks = protocol_tasks(cat, [args.protocol], records.split, records.labels)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    grid = itertools.product(["ce", "cl", "ce+cl"], [512, 128], [0.1, 0.2], [False, True])
    with (out / f"sweep-{args.dataset}-{args.protocol}.jsonl").open("a") as f:
        for loss, batch, temperature, finetune in grid:
            for seed in args.seeds:
                cfg = TrainConfig(dim=args.dim, loss=loss, batch=batch, temperature=temperature)
                bench = Bench(inputs, cat, cfg, resolve_device(args.device))
                method = "nar-ft" if finetune else "nar"
                start, values = time.perf_counter(), []
                for task in tasks:
                    scored = score(bench.vectors(method, task, seed), cat, task.validation)
                    values.append(scored["map@20"])
                row = {"loss": loss, "batch": batch, "temperature": temperature,
                       "finetune": finetune, "seed": seed, "dim": args.dim,
                       "protocol": args.protocol, "data_hash": info["catalogue_hash"],
                       "validation_queries": int(sum(len(v) for v in values)),
                       "validation_map@20": round(float(np.mean(np.concatenate(values))), 4),
                       "seconds": round(time.perf_counter() - start, 1)}
                f.write(json.dumps(row) + "\n")
                f.flush()
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
