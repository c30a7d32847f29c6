"""A small sweep of the NAR recipe on one dataset (one seed per setting), to pick the shipped one.

    python bench/sweep_encoder.py --workdir WS --dataset real --device cuda --out DIR
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from narbuild.encoder.data import Inputs, load_records
from narbuild.encoder.evaluate import run_method
from narbuild.encoder.train import TrainConfig, resolve_device
from narbuild.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--dataset", default="real")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    inputs = Inputs(load_records(Workspace(args.workdir), args.dataset))
    device = resolve_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    grid = itertools.product(["cl", "ce+cl"], [512, 128, 32], [0.1, 0.05, 0.2], [False, True])
    with (out / f"sweep-{args.dataset}.jsonl").open("a") as f:
        for loss, batch, temperature, finetune in grid:
            for seed in args.seeds:
                cfg = TrainConfig(loss=loss, batch=batch, temperature=temperature,
                                  finetune_motifs=finetune, seed=seed)
                run = run_method("nar", inputs, cfg, device)
                row = {"loss": loss, "batch": batch, "temperature": temperature,
                       "finetune": finetune, "seed": seed, "train_seconds": run.train_seconds,
                       **{k: round(v, 4) for k, v in run.metrics.items()}}
                f.write(json.dumps(row) + "\n")
                f.flush()
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
