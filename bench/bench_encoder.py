"""Encoder benchmark: the eval protocol for every method, training time per epoch, embedding
throughput, and CPU-vs-GPU agreement of the embeddings.

    python bench/bench_encoder.py --workdir WS --device cuda --out bench/results/encoder-gpu

writes ``eval.json`` / ``eval.md`` (the `narbuild eval` report), ``runs.jsonl`` (one line per
method, dataset and seed, as they finish), ``throughput.json`` and, with ``--checkpoints``, the
seed-0 NAR checkpoints (``nar-<dataset>.pt``, ``nar-ft-<dataset>.pt``).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from _common import write_json

from narbuild.encoder.checkpoint import save_checkpoint
from narbuild.encoder.data import load_records, motif_graphs
from narbuild.encoder.evaluate import ABLATIONS, METHODS, evaluate
from narbuild.encoder.report import markdown, summary
from narbuild.encoder.train import TrainConfig, embed_nar, resolve_device, train_nar
from narbuild.workspace import Workspace


def throughput(ws: Workspace, dataset: str, device: torch.device, out: Path | None,
               repeats: int = 3) -> dict:
    """Train NAR and NAR-ft (seed 0), save them, time embedding every record of ``dataset``."""
    records = load_records(ws, dataset)
    start = time.perf_counter()
    motifs = motif_graphs(records)
    build_s = time.perf_counter() - start
    result: dict = {"records": len(records), "motif_graphs_seconds": round(build_s, 2)}
    for name, finetune in (("nar", False), ("nar-ft", True)):
        cfg = TrainConfig(finetune_motifs=finetune)
        model, stats = train_nar(records, motifs, cfg, device)
        if out:
            save_checkpoint(model, "nar", dataset, cfg, records.label_names,
                            out / f"{name}-{dataset}.pt")
        embed_nar(model, motifs, device)  # warm-up
        times = []
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            vectors = embed_nar(model, motifs, device)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        row = {"epoch_seconds": stats.epoch_seconds, "embed_seconds": min(times),
               "graphs_per_second": round(len(records) / min(times), 1)}
        if device.type == "cuda":
            cpu = embed_nar(model.cpu(), motifs, torch.device("cpu"))
            cos = np.sum(cpu * vectors, 1) / (np.linalg.norm(cpu, axis=1)
                                              * np.linalg.norm(vectors, axis=1))
            row["cpu_vs_gpu"] = {"max_abs_diff": float(np.abs(cpu - vectors).max()),
                                 "max_abs": float(np.abs(cpu).max()),
                                 "min_cosine": float(cos.min())}
        result[name] = row
        print(dataset, name, json.dumps(row), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--datasets", nargs="+", default=["real", "nas"])
    parser.add_argument("--methods", nargs="+", default=[*METHODS, *ABLATIONS])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", required=True)
    parser.add_argument("--checkpoints", action="store_true")
    parser.add_argument("--skip-eval", action="store_true")
    args = parser.parse_args()
    ws, out, device = Workspace(args.workdir), Path(args.out), resolve_device(args.device)
    out.mkdir(parents=True, exist_ok=True)
    info = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
            "torch": torch.__version__, "threads": torch.get_num_threads()}
    print(json.dumps(info), flush=True)
    runs = (out / "runs.jsonl").open("a")

    def on_run(dataset, method, seed, run):
        line = {"dataset": dataset, "method": method, "seed": seed, **asdict(run)}
        runs.write(json.dumps(line) + "\n")
        runs.flush()
        print(dataset, method, seed, run.train_seconds, run.epoch_seconds,
              {k: round(v, 3) for k, v in run.metrics.items() if k.endswith("@20")}, flush=True)

    tp = {d: throughput(ws, d, device, out if args.checkpoints else None)
          for d in args.datasets}
    write_json(out / "throughput.json", {**info, **tp})
    if not args.skip_eval:
        report = evaluate(ws, args.datasets, args.methods, args.seeds, replace(TrainConfig()),
                          args.device, on_run)
        report["protocol"]["device_name"] = info["device"]
        (out / "eval-details.json").write_text(json.dumps(report, indent=2))
        (out / "eval.json").write_text(json.dumps(summary(report), indent=2))
        (out / "eval.md").write_text(markdown(report))
        print(markdown(report), flush=True)


if __name__ == "__main__":
    main()
