"""Benchmark the IO protocol (`narbuild eval --protocol io`): the arch2vec-IO paper's (a)-(d).

    nice -n 10 .venv/bin/python bench/bench_nas_io_eval.py WORKSPACE           # 3 seeds, 30 epochs
    .venv/bin/python bench/bench_nas_io_eval.py WORKSPACE --seeds 0 --epochs 1  # a trial

The workspace needs processed NAS records and a complete ``nas_io`` table (`narbuild gen-nas`,
`narbuild preprocess`, `narbuild nas-io`). Writes the report (JSON with provenance, Markdown)
and the loss and regret figures to ``--out`` (bench/results/nas-io-eval/).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from _common import write_json

from narbuild import Workspace
from narbuild.nasio.evaluate import evaluate_io
from narbuild.nasio.report import write_io_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="default: arch2vec's 30")
    parser.add_argument("--runs", type=int, default=120)
    parser.add_argument("--out", default="bench/results/nas-io-eval")
    args = parser.parse_args()
    ws = Workspace(args.workdir)
    start = time.perf_counter()
    report = evaluate_io(ws, [int(s) for s in args.seeds.split(",")], epochs=args.epochs,
                         runs=args.runs,
                         on_step=lambda s: print(f"{time.perf_counter() - start:7.0f} s  {s}",
                                                 flush=True))
    paths = write_io_report(ws, report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "eval-io.json", report)
    for name in ("markdown", "regret", "losses"):
        if paths[name].is_file():
            shutil.copy(paths[name], out / paths[name].name)
    print(paths["markdown"].read_text())


if __name__ == "__main__":
    main()
