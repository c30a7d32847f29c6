"""Embedding throughput of a bundled encoder (model only, its inputs prebuilt: NAR's motif
graphs, wl-metric's WL colour counts), of the embedding path (inputs included), and of the whole
`embed` call (records read, vectors written) on a copy of the workspace's processed table, on
this machine's CPU or a GPU.

    python bench/bench_embed_cpu.py --workdir WS [--method nar|wl-metric] [--device cpu] \
        [--out bench/results/embed-cpu.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch
from _common import write_json

from narbuild.encoder.bundled import bundled_path
from narbuild.encoder.checkpoint import load_checkpoint
from narbuild.encoder.data import Inputs, data_hash, load_records, motif_graphs
from narbuild.encoder.embed import embed
from narbuild.encoder.train import embed_nar, resolve_device
from narbuild.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--method", default="nar", choices=["nar", "wl-metric"])
    parser.add_argument("--datasets", nargs="+", default=["real", "nas"])
    parser.add_argument("--out")
    args = parser.parse_args()
    device = resolve_device(args.device)
    result = {"threads": torch.get_num_threads(), "method": args.method}
    for name in args.datasets:
        records = load_records(Workspace(args.workdir), name)
        model, meta = load_checkpoint(bundled_path(args.method, name))
        start = time.perf_counter()
        if meta["method"] == "wlm":
            inputs = Inputs(records).wl_counts(model.rounds)
        else:
            inputs = motif_graphs(records)
        build = time.perf_counter() - start
        start = time.perf_counter()
        if meta["method"] == "wlm":
            model.embed(*inputs)
        else:
            embed_nar(model, inputs, device)
        model_s = time.perf_counter() - start
        result[name] = {"records": len(records), "data_hash": data_hash(records),
                        "checkpoint": meta["hash"], "inputs_seconds": round(build, 2),
                        "model_seconds": round(model_s, 2),
                        "model_graphs_per_second": round(len(records) / model_s, 1),
                        "end_to_end_graphs_per_second": round(len(records) / (model_s + build), 1),
                        "embed_call": embed_call(Path(args.workdir), name, args.method,
                                                 args.device)}
        print(name, json.dumps(result[name]), flush=True)
    if args.out:
        write_json(args.out, result)


def embed_call(workdir: Path, dataset: str, method: str, device: str) -> dict[str, float]:
    """``narbuild.embed`` of one dataset (records read, motif graphs, model, table written) into
    a scratch workspace holding a copy of the processed table."""
    with tempfile.TemporaryDirectory(prefix="narbuild-bench-") as tmp:
        ws = Workspace(Path(tmp) / "ws", create=True)
        shutil.copytree(workdir / "processed", ws.root / "processed")
        start = time.perf_counter()
        summary = embed(ws, dataset=dataset, method=method, device=device)
        seconds = time.perf_counter() - start
    records = summary.datasets[dataset]["records"]
    return {"seconds": round(seconds, 2), "graphs_per_second": round(records / seconds, 1)}


if __name__ == "__main__":
    main()
