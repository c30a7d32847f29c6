"""How wl-metric's checkpoint fits under 20 MB: three ways, chosen on validation queries.

The real-set map has one row per WL colour of the training records (56k on the 18-registry
catalogue) and 256 columns: 57 MB in float32. Benchmark v2's ``closed`` and ``open`` tasks
(seed 0, 3 folds) compare, on their validation queries:

* the recipe with every training colour (what int8 storage keeps, at 15 MB);
* ``dim`` 128 instead of 256 (float16 would then fit);
* only the colours seen in 2+ training records (``min_colour_records`` 2; float16 would fit).

It also trains the recipe once on the processed split and reports how far int8 storage (one
scale per row, :func:`narbuild.encoder.wlmetric.quantize`) moves the vectors.

    python bench/bench_wl_metric_size.py --workdir WS --out bench/results/wl-metric-size.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import write_json

from narbuild.encoder import methods

VARIANTS = {"wl-metric-dim128": {"dim": 128}, "wl-metric-min2": {"min_colour_records": 2}}
for _name, _change in VARIANTS.items():
    methods.LEARNED[_name] = methods.Method(_name, "wlm", f"wl-metric with {_change}",
                                            {**methods.WL_METRIC, **_change})

from narbuild.benchmark import run  # reads the registry at import: after the variants
from narbuild.benchmark.suite import evaluate_protocols
from narbuild.encoder import wlmetric
from narbuild.encoder.data import Inputs, data_hash, load_records
from narbuild.encoder.train import TrainConfig
from narbuild.workspace import Workspace

run.LEARNED = tuple(m for m, spec in methods.LEARNED.items() if not spec.io)
run.METHODS = run.LEARNED + run.BAGS + run.SELECTED + run.FUSIONS


def validation(ws: Workspace) -> dict[str, dict[str, float]]:
    """Validation and test MAP@20 of the recipe, each variant and wl-fam on closed and open."""
    names = ["wl-metric", *VARIANTS, "wl-fam"]
    report = evaluate_protocols(ws, ["real"], ["closed", "open"], names, [0], TrainConfig(),
                                "cpu", 3)
    rows = {}
    for protocol, r in report["datasets"]["real"]["protocols"].items():
        for name, row in r["methods"].items():
            rows[f"{protocol}/{name}"] = {"validation_map20": row["validation"]["map@20"],
                                          "test_map20": round(row["mean"]["map@20"], 4)}
            print(protocol, name, rows[f"{protocol}/{name}"], flush=True)
    return rows


def int8_drift(ws: Workspace) -> dict[str, float]:
    """The recipe trained once without rounding, then its vectors against the int8 map's."""
    records = load_records(ws, "real")
    rounding = wlmetric.quantize, wlmetric.dequantize
    wlmetric.quantize = lambda p: (p.detach().clone(), torch.ones(p.shape[0], 1))
    wlmetric.dequantize = lambda values, scale: values
    try:
        inputs = Inputs(records)
        model, _ = methods.learned("wl-metric").train(inputs, TrainConfig(), torch.device("cpu"))
    finally:
        wlmetric.quantize, wlmetric.dequantize = rounding
    counts, found = inputs.wl_counts(model.rounds)
    exact = model.embed(counts, found)
    with torch.no_grad():
        model.proj.copy_(wlmetric.dequantize(*wlmetric.quantize(model.proj)))
    cosines = (exact * model.embed(counts, found)).sum(1)
    return {"colours": int(model.proj.shape[0]), "min_cosine": float(np.min(cosines)),
            "mean_cosine": float(np.mean(cosines))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--out")
    args = parser.parse_args()
    ws, start = Workspace(args.workdir), time.perf_counter()
    result = {"data_hash": data_hash(load_records(ws, "real")), "variants": VARIANTS,
              "validation": validation(ws), "int8": int8_drift(ws)}
    result["seconds"] = round(time.perf_counter() - start)
    print(result["int8"], result["seconds"], "s")
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
