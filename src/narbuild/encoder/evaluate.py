"""``narbuild eval``: every method, same split, same recipe, same run; the paper's Tables 1-4.

For each dataset (real, nas) and method, train on the training records (one run per seed),
embed every record, and score the test queries with :mod:`narbuild.encoder.metrics`. Methods:

* ``nar``: the paper's two-stage motif encoder (Table 1, "Ours");
* ``gcn``, ``gat``: the raw-graph baselines of Table 1;
* ``wl``: the training-free WL operator-hash histogram (TF-IDF, cosine);
* ``vae``: an arch2vec-style graph VAE (unsupervised);
* ablations: ``nar-ce``, ``nar-cl`` (Table 3: one loss term only), ``nar-nas`` (Table 4: F_s
  and F_m pre-trained on the NAS set, then trained on the real set) and ``nar-ft`` (ours: F_s
  fine-tuned in stage 2 instead of frozen); ``nar-set`` (ours: NAR-CL with a readout over
  distinct motifs); ``arch2vec`` and ``arch2vec-io`` (the latter on the nas set only, with the
  ``nas_io`` table); every learned method is an entry of :data:`narbuild.encoder.methods.LEARNED`;
* ``wl-fam`` (ours): WL colour presence weighted by an idf over the training families
  (:func:`narbuild.encoder.wl.wl_family_tfidf`; deterministic, no gradient training);
* ``nar-cl+wl``, ``nar-cl+wl-fam`` (ours): NAR-CL's cosine and a WL cosine, weighted
  (:func:`narbuild.encoder.wl.fuse_with_wl`; 0.5 each unless a weight was chosen on a validation
  split, :data:`narbuild.encoder.wl.FUSION_WEIGHTS`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from narbuild.encoder.data import Inputs, load_datasets, load_records
from narbuild.encoder.methods import LEARNED, learned
from narbuild.encoder.metrics import KS, evaluate_vectors
from narbuild.encoder.train import TrainConfig, resolve_device, train_method, vectors_of
from narbuild.encoder.wl import (
    FUSION_WEIGHTS,
    WL_METHODS,
    fuse_with_wl,
    fusion_weight,
    wl_family_tfidf,
    wl_tfidf,
)
from narbuild.errors import NarbuildError
from narbuild.preprocess.pipeline import DATASETS
from narbuild.provenance import provenance
from narbuild.workspace import Workspace

METHODS = ("nar", "gcn", "gat", "wl", "vae")
ABLATIONS = ("nar-ce", "nar-cl", "nar-nas", "nar-ft", "wl-fam", "nar-cl+wl", "nar-cl+wl-fam")
METRICS = tuple(f"{m}@{k}" for m in ("mrr", "map", "ndcg") for k in KS)
KNOWN = (*METHODS, *ABLATIONS, *(m for m in LEARNED if m not in METHODS + ABLATIONS))
"""Every method this protocol runs: the paper's, the ablations, and the registry's others."""


@dataclass
class Run:
    """One method on one dataset with one seed."""

    metrics: dict[str, float]
    train_seconds: float
    epoch_seconds: dict[str, float]
    embed_seconds: float


def run_method(method: str, inputs: Inputs, cfg: TrainConfig, device: torch.device,
               pretrained: Callable[[], torch.nn.Module] | None = None,
               trained: dict[tuple[str, int], tuple[Any, Run]] | None = None) -> Run:
    """Train (unless training-free), embed every record, score the test queries. Vectors are
    kept in ``trained`` (per method and seed; a WL bag, being deterministic, once): a fusion
    (``nar-cl+wl``) reuses those of both its sides when an earlier run of the same ``inputs``
    left them there."""
    learned_part, _, bag = method.partition("+")
    if learned_part not in KNOWN or bag not in ("", *WL_METHODS):
        raise NarbuildError(f"unknown method {method!r}", f"use {', '.join(KNOWN)}")
    trained = {} if trained is None else trained

    def vectors(name: str) -> tuple[Any, Run]:
        key = (name, 0 if name in WL_METHODS else cfg.seed)
        if key not in trained:
            trained[key] = _embed(name, inputs, cfg, device, pretrained)
        return trained[key]

    learned, _, fused = method.partition("+")
    found, run = vectors(learned)
    if fused:
        bag, bag_run = vectors(fused)
        start = time.perf_counter()
        found = fuse_with_wl(found, bag, fusion_weight(inputs.records.dataset, fused, learned))
        seconds = run.embed_seconds + bag_run.embed_seconds + time.perf_counter() - start
        run = replace(run, embed_seconds=round(seconds, 2))
    return replace(run, metrics=evaluate_vectors(found, inputs.records.labels,
                                                 inputs.records.test))


def _embed(method: str, inputs: Inputs, cfg: TrainConfig, device: torch.device,
           pretrained: Callable[[], torch.nn.Module] | None) -> tuple[Any, Run]:
    """Every record's vector by ``method`` (trained first unless a WL bag), and its timings."""
    start = time.perf_counter()
    if method in WL_METHODS:
        vectors = wl_vectors(method, inputs)
        return vectors, Run({}, 0.0, {}, round(time.perf_counter() - start, 2))
    spec = learned(method)
    base = spec.encoder
    init = pretrained() if spec.pretrain_on_nas and pretrained else None
    model, stats = spec.train(inputs, cfg, device, init=init)
    embed_start = time.perf_counter()
    vectors = vectors_of(base, model, inputs, device)
    epochs = {k: float(np.mean(v)) for k, v in stats.epoch_seconds.items()}
    return vectors, Run({}, round(embed_start - start, 2), epochs,
                        round(time.perf_counter() - embed_start, 2))


def wl_vectors(method: str, inputs: Inputs) -> Any:
    """``wl`` (training-free) or ``wl-fam`` (idf over the training records' families) rows."""
    if method == "wl-fam":
        return wl_family_tfidf(inputs.raw, inputs.records.labels, inputs.records.train)
    return wl_tfidf(inputs.raw)


def evaluate(ws: Workspace, datasets: Sequence[str] = DATASETS,
             methods: Sequence[str] = METHODS, seeds: Sequence[int] = (0, 1, 2),
             cfg: TrainConfig | None = None, device: str = "auto",
             on_run: Callable[[str, str, int, Run], None] | None = None) -> dict[str, Any]:
    """The full report: per dataset and method, metric means and stds over ``seeds``, timings.
    Datasets without processed records are skipped (at least one must have some)."""
    cfg, dev = cfg or TrainConfig(), resolve_device(device)
    report: dict[str, Any] = {"protocol": _protocol(cfg, dev, seeds), "datasets": {}}
    inputs = {n: Inputs(r) for n, r in load_datasets(ws, datasets).items()}
    if "nas" in inputs and any(m in LEARNED and LEARNED[m].io for m in methods):
        from narbuild.nasio.arch2vec import load_io

        inputs["nas"].io = load_io(ws, inputs["nas"].records)
    for name in list(inputs):
        rows: dict[str, Any] = {}
        trained: dict[tuple[str, int], tuple[Any, Run]] = {}
        for method in methods:
            if (method == "nar-nas" and name != "real") or (
                    method in LEARNED and LEARNED[method].io and name != "nas"):
                continue
            runs = []
            for seed in ([0] if method in WL_METHODS else seeds):
                seeded = replace(cfg, seed=seed)
                run = run_method(method, inputs[name], seeded, dev,
                                 lambda c=seeded: _nas_pretrained(ws, inputs, c, dev), trained)
                runs.append(run)
                if on_run:
                    on_run(name, method, seed, run)
            rows[method] = _aggregate(runs)
        records = inputs[name].records
        report["datasets"][name] = {"records": len(records), "queries": len(records.test),
                                    "families": len(records.label_names), "methods": rows}
    return report


def _nas_pretrained(ws: Workspace, inputs: dict[str, Inputs], cfg: TrainConfig,
                    device: torch.device) -> torch.nn.Module:
    """NAR trained on the NAS set (Table 4's initialisation); its graph stores are kept in
    ``inputs`` so each seed reuses them."""
    if "nas" not in inputs:
        try:
            inputs["nas"] = Inputs(load_records(ws, "nas"))
        except NarbuildError:
            raise NarbuildError("nar-nas pre-trains on the NAS set, which this workspace lacks",
                                "run `narbuild gen-nas` and `narbuild preprocess`, or drop "
                                "nar-nas") from None
    return train_method("nar", inputs["nas"], cfg, device)[0]


def _aggregate(runs: list[Run]) -> dict[str, Any]:
    values = {m: [r.metrics[m] for r in runs] for m in METRICS}
    epochs: dict[str, list[float]] = {}
    for r in runs:
        for stage, s in r.epoch_seconds.items():
            epochs.setdefault(stage, []).append(s)
    return {"mean": {m: round(float(np.mean(v)), 4) for m, v in values.items()},
            "std": {m: round(float(np.std(v)), 4) for m, v in values.items()},
            "seeds": len(runs), "runs": [r.metrics for r in runs],
            "train_seconds": round(float(np.mean([r.train_seconds for r in runs])), 2),
            "epoch_seconds": {k: round(float(np.mean(v)), 3) for k, v in epochs.items()},
            "embed_seconds": round(float(np.mean([r.embed_seconds for r in runs])), 3)}


def _protocol(cfg: TrainConfig, device: torch.device, seeds: Sequence[int]) -> dict[str, Any]:
    return {"split": "processed table's split column (0.9/0.1 stratified by fine label)",
            "relevant": "same fine label (nas: same edit-distance class)",
            "similarity": "cosine", "ks": list(KS), "seeds": list(seeds),
            "device": str(device), "torch": torch.__version__, **provenance(),
            "config": cfg.as_dict(),
            "fusion_weights": {f"{d} {lm}+{m}": w for (d, lm, m), w in FUSION_WEIGHTS.items()}}
