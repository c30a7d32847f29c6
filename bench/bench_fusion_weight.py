"""How the weight of ``nar-cl+wl-fam`` (NAR's cosine x w + wl-fam's x (1 - w)) is chosen: on a
validation split cut from the training records, then every weight's test figures next to it (so a
reader can see the choice did not look at them).

Validation, with nothing fitted on the validation labels:
* NAR: stage 1 (F_s, the motif contrastive loss, which reads no labels) is the bundled
  checkpoint's; stage 2 (F_m and the head, trained on family labels) is retrained from scratch on
  the fit records only, with the checkpoint's recipe;
* wl-fam: its idf is fitted on the fit records;
* the validation queries (``narbuild.encoder.data.validation_split``) rank the training records.

Test: the bundled checkpoint and the idf over every training record; the test queries rank all
records, as ``narbuild eval`` does. ``test_stage2_on_fit`` is the same with the validation model
(stage 2 fitted on the fit records): the honest test figure when the workspace's split is not
the one the bundled checkpoint was trained on (its data hash differs). The weight with the best
validation MAP (mean of @20, @50 and @100) is chosen.

    python bench/bench_fusion_weight.py --workdir WS [--dataset nas] [--device cpu]
        [--stage2 CHECKPOINT] [--out bench/results/fusion-weight-nas.json]

``--stage2`` keeps the retrained stage-2 checkpoint (and reuses it when it exists).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from narbuild.encoder.bundled import bundled_path
from narbuild.encoder.checkpoint import load_checkpoint, save_checkpoint
from narbuild.encoder.data import NUM_OPS, load_records, motif_graphs, raw_graphs, validation_split
from narbuild.encoder.metrics import KS, rank_rows, relevance, retrieval_metrics
from narbuild.encoder.models import NAREncoder
from narbuild.encoder.train import TrainConfig, embed_nar, resolve_device, train_nar
from narbuild.encoder.wl import wl_family_tfidf
from narbuild.workspace import Workspace

WEIGHTS = [round(w, 1) for w in np.arange(0, 1.01, 0.1)]


def stage2_on_fit(bundled: NAREncoder, meta: dict, records, motifs, fit: np.ndarray,
                  device: torch.device) -> tuple[NAREncoder, float]:
    """The bundled F_s with F_m and the head retrained on the ``fit`` records only."""
    cfg = replace(TrainConfig(**meta["config"]), motif_epochs=0)
    torch.manual_seed(cfg.seed)
    model = NAREncoder(NUM_OPS, len(records.label_names), cfg.dim, cfg.layers, cfg.dropout)
    model.motif.load_state_dict(bundled.motif.state_dict())
    split = np.where(np.isin(np.arange(len(records)), fit), "train", "held")
    start = time.perf_counter()
    model, _ = train_nar(replace(records, split=split), motifs, cfg, device, init=model)
    return model, time.perf_counter() - start


def fused_metrics(nar: np.ndarray, fam, labels: np.ndarray, queries: np.ndarray,
                  chunk: int = 512) -> list[dict[str, float]]:
    """The protocol's metrics for each weight w of w x NAR's cosine + (1 - w) x wl-fam's (what
    ``fuse_with_wl`` ranks by), both similarity blocks computed once per query chunk."""
    unit = torch.nn.functional.normalize(torch.as_tensor(nar, dtype=torch.float32), dim=1)
    ranked = [[] for _ in WEIGHTS]
    for start in range(0, len(queries), chunk):
        q = queries[start:start + chunk]
        cos_nar = unit[torch.from_numpy(q)] @ unit.T
        cos_fam = torch.from_numpy((fam[q] @ fam.T).toarray().astype(np.float32))
        for i, w in enumerate(WEIGHTS):
            ranked[i].append(rank_rows(w * cos_nar + (1 - w) * cos_fam, q, max(KS)))
    return [retrieval_metrics(*relevance(labels, queries, np.concatenate(r))) for r in ranked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--dataset", default="nas")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--stage2")
    parser.add_argument("--out")
    args = parser.parse_args()
    device = resolve_device(args.device)
    records = load_records(Workspace(args.workdir), args.dataset)
    labels, train = records.labels, records.train
    fit, held = validation_split(train, labels)
    motifs, raw = motif_graphs(records), raw_graphs(records)
    bundled, meta = load_checkpoint(bundled_path("nar", args.dataset))
    cached = Path(args.stage2) if args.stage2 else None
    if cached and cached.is_file():
        val_model, seconds = load_checkpoint(cached)[0], 0.0
    else:
        val_model, seconds = stage2_on_fit(bundled, meta, records, motifs, fit, device)
        if cached:
            save_checkpoint(val_model, "nar", args.dataset, TrainConfig(**meta["config"]),
                            records.label_names, cached, {"fit_records": len(fit)})
    fit_nar = embed_nar(val_model, motifs, device)
    val_nar = fit_nar[train]
    val_fam = wl_family_tfidf(raw, labels, fit)[train]
    where = {int(r): i for i, r in enumerate(train)}
    queries = np.array([where[int(q)] for q in held])
    test_nar = embed_nar(bundled, motifs, device)
    test_fam = wl_family_tfidf(raw, labels, train)
    rows = []
    val_runs = fused_metrics(val_nar, val_fam, labels[train], queries)
    test_runs = fused_metrics(test_nar, test_fam, labels, records.test)
    fit_runs = fused_metrics(fit_nar, test_fam, labels, records.test)
    for w, val, test, fit_test in zip(WEIGHTS, val_runs, test_runs, fit_runs):
        rows.append({"weight": w, "validation": {k: round(v, 4) for k, v in val.items()},
                     "test": {k: round(v, 4) for k, v in test.items()},
                     "test_stage2_on_fit": {k: round(v, 4) for k, v in fit_test.items()}})
        print(f"w {w:.1f} validation MAP@20/@100 {val['map@20']:.3f}/{val['map@100']:.3f} | "
              f"test MRR@20 {test['mrr@20']:.3f} MAP@20 {test['map@20']:.3f} NDCG@20 "
              f"{test['ndcg@20']:.3f} MAP@100 {test['map@100']:.3f} | stage 2 on fit: test "
              f"MAP@20 {fit_test['map@20']:.3f} MAP@100 {fit_test['map@100']:.3f}", flush=True)
    best = max(rows, key=lambda r: np.mean([r["validation"][f"map@{k}"] for k in (20, 50, 100)]))
    print("chosen on validation MAP (mean @20/@50/@100): weight", best["weight"])
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"dataset": args.dataset, "records": len(records),
                       "validation_queries": len(held), "fit_records": len(fit),
                       "test_queries": len(records.test), "checkpoint": meta["hash"],
                       "stage2_seconds": round(seconds, 1), "device": str(device),
                       "chosen": best, "grid": rows}, f, indent=2)


if __name__ == "__main__":
    main()
