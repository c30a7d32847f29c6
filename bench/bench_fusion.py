"""Retrieval quality of the bundled encoders (NAR and wl-metric), the WL baselines (wl, and wl-fam
fitted to the training families) and NAR's fusions (nar-cl+wl, nar-cl+wl-fam), on the test split
of a workspace's processed table (the paper's protocol). No training: the bundled checkpoints
were trained on the training split only (see the model card); each one's data hash is there,
and a checkpoint trained on another catalogue's split may have seen today's test records.

    python bench/bench_fusion.py --workdir WS [--datasets real nas] [--out bench/results/fusion.json]
"""

from __future__ import annotations

import argparse

import torch
from _common import write_json

from narbuild.encoder.bundled import bundled_path
from narbuild.encoder.checkpoint import load_checkpoint
from narbuild.encoder.data import Inputs, data_hash, load_records, motif_graphs, raw_graphs
from narbuild.encoder.metrics import evaluate_vectors
from narbuild.encoder.train import embed_nar, vectors_of
from narbuild.encoder.wl import (
    FUSION_WEIGHTS,
    fuse_with_wl,
    fusion_weight,
    wl_family_tfidf,
    wl_tfidf,
)
from narbuild.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--datasets", nargs="+", default=["real", "nas"])
    parser.add_argument("--out")
    args = parser.parse_args()
    result: dict = {"fusion_weights": {f"{d} {lm}+{m}": w for (d, lm, m), w in FUSION_WEIGHTS.items()}}
    for name in args.datasets:
        records = load_records(Workspace(args.workdir), name)
        model, meta = load_checkpoint(bundled_path("nar", name))
        nar = embed_nar(model, motif_graphs(records), torch.device("cpu"))
        wlm, wlm_meta = load_checkpoint(bundled_path("wl-metric", name))
        metric = vectors_of("wlm", wlm, Inputs(records), torch.device("cpu"))
        raw = raw_graphs(records)
        wl, fam = wl_tfidf(raw), wl_family_tfidf(raw, records.labels, records.train)
        scores = {method: evaluate_vectors(vectors, records.labels, records.test)
                  for method, vectors in (("wl-metric (bundled)", metric),
                                          ("nar-cl (bundled)", nar), ("wl", wl), ("wl-fam", fam),
                                          ("nar-cl+wl",
                                           fuse_with_wl(nar, wl, fusion_weight(name, "wl"))),
                                          ("nar-cl+wl-fam",
                                           fuse_with_wl(nar, fam, fusion_weight(name, "wl-fam"))))}
        result[name] = {"records": len(records), "queries": len(records.test),
                        "data_hash": data_hash(records), "checkpoint": meta["hash"],
                        "wl_metric_checkpoint": wlm_meta["hash"],
                        "metrics": {m: {k: round(v, 4) for k, v in s.items()}
                                    for m, s in scores.items()}}
        for method, s in scores.items():
            print(name, method, {k: round(v, 3) for k, v in s.items() if k.endswith("@20")
                                 or k == "map@100"}, flush=True)
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
