"""``narbuild eval --protocol``: every method on every task of every protocol, scored per query.

For each task (:mod:`narbuild.benchmark.protocols`) a method fits on the task's ``fit`` rows
only (training, idf weights, family weights), embeds every record, and ranks the gallery for
each validation and test query, siblings and non-gallery records excluded. Settings are chosen
per task on the validation queries (MAP@20), then frozen for the test queries (a task without
validation queries takes the v1 defaults: WL's rounds, weight 0.5, ``nar``):

* ``wl``, ``wl-fam``: the WL rounds, from :data:`WL_ROUNDS`;
* a fusion ``<learned>+<wl method>``: the learned side's weight, from :data:`FUSION_GRID`;
* ``nar-val``: which of ``nar`` (ce+cl), ``nar-ce`` and ``nar-cl`` (run in the same eval) is
  used.

Per method and protocol the report holds the mean and std over seeds of each metric, a
bootstrap 95 % interval over queries (seed-averaged per-query values), the choices made, and
@20 metrics per slice: source, family size and coarse label.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
import torch

from narbuild._version import __version__
from narbuild.benchmark.protocols import PROTOCOLS, Catalogue, Task, protocol_tasks, size_bucket
from narbuild.encoder import methods
from narbuild.encoder.data import Inputs, Records, data_hash
from narbuild.encoder.metrics import KS, bootstrap_ci, cosine_topk, per_query_metrics
from narbuild.encoder.train import TrainConfig, resolve_device, train_method, vectors_of
from narbuild.encoder.wl import (
    FUSION_WEIGHT,
    WL_METHODS,
    family_rows,
    fuse_with_wl,
    idf_weights,
    tfidf_rows,
)
from narbuild.errors import NarbuildError

LEARNED = tuple(m for m, spec in methods.LEARNED.items() if not spec.io)
"""The registry's methods but those that learn from nas_io (they run in the io protocol)."""
BAGS = ("wl", "wl-fam")
SELECTED = ("nar-val",)
FUSIONS = ("nar+wl-fam", "nar-cl+wl", "nar-cl+wl-fam", "gcn+wl-fam", "wl-metric+wl-fam")
METHODS = LEARNED + BAGS + SELECTED + FUSIONS
DEFAULT_METHODS = ("nar", "nar-ce", "nar-cl", "nar-val", "nar-cl+wl-fam", "gcn", "gat", "vae",
                   "wl", "wl-fam")
WL_ROUNDS = (1, 2, 3)
FUSION_GRID = tuple(round(0.1 * i, 1) for i in range(11))
SELECT_BY = "map@20"
METRICS = tuple(f"{m}@{k}" for m in ("mrr", "map", "ndcg") for k in KS)


def task_records(records: Records, fit: np.ndarray) -> Records:
    """``records`` as a method fitting on ``fit`` sees them: only those rows are ``train``,
    and the label space is their families alone (other rows' labels are -1)."""
    names = sorted({records.label_names[i] for i in records.labels[fit]})
    index = {n: i for i, n in enumerate(names)}
    labels = np.full(len(records), -1, dtype=np.int64)
    labels[fit] = [index[records.label_names[i]] for i in records.labels[fit]]
    split = np.full(len(records), "held", dtype=object)
    split[fit] = "train"
    return Records(records.table, records.record_ids, labels, names, split)


@dataclass
class Scored:
    """Per-query metrics of one method on one task's validation and test queries."""

    validation: dict[str, np.ndarray]
    test: dict[str, np.ndarray]


def score(vectors: Any, cat: Catalogue, queries: np.ndarray,
          ks: Sequence[int] = KS) -> dict[str, np.ndarray]:
    """Per-query metrics of ``vectors`` for ``queries`` (each must have R > 0)."""
    queries = np.asarray(queries, dtype=np.int64)
    if not len(queries):
        return {m: np.zeros(0) for m in METRICS}
    return score_ranked(cosine_topk(vectors, queries, max(ks), exclude=cat.excluded), cat,
                        queries, ks)


def score_ranked(ranked: np.ndarray, cat: Catalogue, queries: np.ndarray,
                 ks: Sequence[int] = KS) -> dict[str, np.ndarray]:
    """Per-query metrics of the records ``ranked`` for each of ``queries`` (best first)."""
    rel, counts = [], []
    for start in range(0, len(queries), 1024):
        relevant = cat.rankable_relevant(queries[start:start + 1024])
        rel.append(np.take_along_axis(relevant, ranked[start:start + 1024], 1))
        counts.append(relevant.sum(1))
    return per_query_metrics(np.concatenate(rel), np.concatenate(counts), ks)


@dataclass
class Bench:
    """One dataset's records, catalogue and tasks, and the vectors computed so far."""

    inputs: Inputs
    cat: Catalogue
    cfg: TrainConfig
    device: torch.device
    cache: Path | None = None
    """Where trained vectors are kept by content (method, seed, recipe, fitted rows, records):
    a re-run, or one killed half-way, trains only what it has not trained yet."""
    _vectors: dict[tuple, tuple[Any, float]] = field(default_factory=dict)
    pretrain: Inputs | None = None
    """The NAS records ``nar-nas`` pre-trains on (real set only)."""
    _pretrained_models: dict[int, torch.nn.Module] = field(default_factory=dict)

    def vectors(self, method: str, task: Task, seed: int, rounds: int = 0) -> Any:
        """``method``'s vectors of every record, fitted on ``task.fit`` (kept by method, seed
        and the fitted rows: ``closed`` and ``variants`` share one training)."""
        fit_key = hashlib.sha1(np.asarray(task.fit, np.int64).tobytes()).hexdigest()
        key = (method, 0 if method in BAGS else seed, rounds, fit_key)
        if key not in self._vectors:
            if method in BAGS:
                start = time.perf_counter()
                found = self._bag(method, task.fit, rounds)
                self._vectors[key] = (found, time.perf_counter() - start)
            else:
                self._vectors[key] = self._stored(method, seed, task.fit, fit_key)
        return self._vectors[key][0]

    def _stored(self, method: str, seed: int, fit: np.ndarray, fit_key: str
                ) -> tuple[np.ndarray, float]:
        """Trained vectors and the seconds their training took (read back from the cache)."""
        start = time.perf_counter()
        if self.cache is None:
            return self._learned(method, seed, fit), time.perf_counter() - start
        t = self.inputs.records.table
        key = [method, seed, replace(self.cfg, seed=seed).as_dict(), fit_key,
               t["record_id"].to_pylist(), t["graph_hash"].to_pylist(), __version__,
               torch.__version__]
        if method == "nar-nas" and self.pretrain is not None:
            key.append(data_hash(self.pretrain.records))  # the set it pre-trained on
        content = json.dumps(key, default=str)
        path = self.cache / f"{hashlib.sha256(content.encode()).hexdigest()[:32]}.npz"
        try:
            with np.load(path) as stored:
                return stored["vectors"], float(stored["seconds"])
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # missing, torn or foreign: train again
        found = self._learned(method, seed, fit)
        seconds = time.perf_counter() - start
        self.cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, vectors=found, seconds=seconds)
        os.replace(tmp, path)
        return found, seconds

    def seconds(self) -> dict[str, float]:
        """Fitting + embedding seconds per method, summed over its tasks and seeds."""
        out: dict[str, float] = {}
        for (method, *_), (_, s) in self._vectors.items():
            out[method] = round(out.get(method, 0.0) + s, 2)
        return out

    def _bag(self, method: str, fit: np.ndarray, rounds: int) -> sp.csr_matrix:
        return bag_rows(method, self.inputs.wl_counts(rounds)[0], self.inputs.records.labels,
                        fit)

    def _learned(self, method: str, seed: int, fit: np.ndarray) -> np.ndarray:
        spec = methods.learned(method)
        cfg = spec.config(replace(self.cfg, seed=seed))
        view = Inputs(task_records(self.inputs.records, fit), self.inputs._cache)
        init = copy.deepcopy(self._pretrained(seed)) if spec.pretrain_on_nas else None
        model, _ = spec.train(view, cfg, self.device, init=init)
        return vectors_of(spec.encoder, model, view, self.device)

    def _pretrained(self, seed: int) -> torch.nn.Module:
        """NAR trained on the whole NAS set (Table 4's initialisation; NAS holds no real
        family, so no protocol's test family leaks through it), once per seed."""
        if self.pretrain is None:
            raise NarbuildError("nar-nas pre-trains on the NAS set, which this workspace lacks",
                                "run `narbuild gen-nas` and `narbuild preprocess`, or drop "
                                "nar-nas")
        if seed not in self._pretrained_models:
            nas = self.pretrain
            everything = task_records(nas.records, np.arange(len(nas.records)))
            view = Inputs(everything, nas._cache)
            self._pretrained_models[seed] = train_method("nar", view, replace(self.cfg, seed=seed),
                                                         self.device)[0]
        return self._pretrained_models[seed]


def bag_rows(method: str, counts: sp.csr_matrix, labels: np.ndarray,
             fit: np.ndarray) -> sp.csr_matrix:
    """``wl`` (TF-IDF with the ``fit`` rows' idf) or ``wl-fam`` (presence with the idf over the
    ``fit`` rows' families) rows of WL colour ``counts`` (left as they are)."""
    counts = counts.copy()
    if method == "wl-fam":
        return family_rows(counts, labels, fit)[0]
    return tfidf_rows(counts, idf_weights(counts[fit]))


def _best(options: dict[Any, Scored], default: Any) -> tuple[Any, Scored]:
    """The option with the best mean validation ``SELECT_BY`` (the first on ties), or
    ``default`` when the task has no validation queries."""
    if not len(next(iter(options.values())).validation[SELECT_BY]):
        return default, options[default]
    choice = max(options, key=lambda o: float(np.mean(options[o].validation[SELECT_BY])))
    return choice, options[choice]


def run_task(bench: Bench, method: str, task: Task, seed: int) -> tuple[Scored, Any]:
    """``method`` on one task with one seed: per-query metrics and the setting it chose."""
    def scored(vectors: Any) -> Scored:
        return Scored(score(vectors, bench.cat, task.validation),
                      score(vectors, bench.cat, task.queries))

    def rounds_of(bag: str) -> dict[int, Scored]:
        return {r: scored(bench.vectors(bag, task, seed, r)) for r in WL_ROUNDS}

    if method in BAGS:
        return _swap(_best(rounds_of(method), WL_METHODS[method]))
    if method == "nar-val":
        return _swap(_best({m: run_task(bench, m, task, seed)[0]
                            for m in ("nar", "nar-ce", "nar-cl")}, "nar"))
    learned, _, bag = method.partition("+")
    if not bag:
        return scored(bench.vectors(learned, task, seed)), None
    rounds = _best(rounds_of(bag), WL_METHODS[bag])[0]
    encoded, wl = bench.vectors(learned, task, seed), bench.vectors(bag, task, seed, rounds)
    weight, result = _best({w: scored(fuse_with_wl(encoded, wl, w)) for w in FUSION_GRID},
                           FUSION_WEIGHT)
    return result, {"weight": weight, "rounds": rounds}


def _swap(pair: tuple[Any, Scored]) -> tuple[Scored, Any]:
    return pair[1], pair[0]


def benchmark(inputs: Inputs, cat: Catalogue, protocols: Sequence[str], methods: Sequence[str],
              seeds: Sequence[int], cfg: TrainConfig, device: str = "auto",
              folds: int = 5, on_run: Callable[[str, str, int], None] | None = None,
              cache: Path | None = None, pretrain: Inputs | None = None) -> dict[str, Any]:
    """The report of ``methods`` on ``protocols`` for one dataset (see the module)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise NarbuildError(f"unknown method(s) {', '.join(unknown)}",
                            f"use {', '.join(METHODS)}")
    records = inputs.records
    tasks = protocol_tasks(cat, protocols, records.split, records.labels, folds)
    bench = Bench(inputs, cat, cfg, resolve_device(device), cache, pretrain=pretrain)
    report: dict[str, Any] = {"protocols": {}}
    for protocol in protocols:
        mine = [t for t in tasks if t.protocol == protocol]
        if not mine:
            continue
        queries = np.concatenate([t.queries for t in mine])
        start = time.perf_counter()
        rows = {}
        for method in methods:
            per_seed, choices, validation = [], [], []
            for seed in ([0] if method in BAGS else seeds):
                parts = []
                for task in mine:
                    result, choice = run_task(bench, method, task, seed)
                    parts.append(result.test)
                    validation.append(result.validation[SELECT_BY])
                    choices.append(choice)
                per_seed.append({m: np.concatenate([p[m] for p in parts]) for m in METRICS})
                if on_run:
                    on_run(protocol, method, seed)
            rows[method] = _aggregate(per_seed, queries, records, cat, choices)
            held = np.concatenate(validation) if validation else np.zeros(0)
            rows[method]["validation"] = {SELECT_BY: round(float(held.mean()), 4)
                                          if len(held) else None, "queries": len(held)}
        report["protocols"][protocol] = {
            "tasks": [{"name": t.name, "fit": len(t.fit), "validation": len(t.validation),
                       "queries": len(t.queries)} for t in mine],
            "queries": len(queries), "seconds": round(time.perf_counter() - start, 1),
            "methods": rows}
    report["fit_seconds"] = bench.seconds()
    return report


def _aggregate(per_seed: list[dict[str, np.ndarray]], queries: np.ndarray, records: Records,
               cat: Catalogue, choices: list[Any]) -> dict[str, Any]:
    means = {m: [float(np.mean(s[m])) if len(s[m]) else float("nan") for s in per_seed]
             for m in METRICS}
    averaged = {m: np.mean([s[m] for s in per_seed], axis=0) for m in METRICS}
    return {"mean": {m: round(float(np.mean(v)), 4) for m, v in means.items()},
            "std": {m: round(float(np.std(v)), 4) for m, v in means.items()},
            "ci95": {m: bootstrap_ci(v) for m, v in averaged.items()},
            "seeds": len(per_seed),
            "slices": slices(averaged, queries, records.table, cat),
            "choices": _count(choices)}


def slices(averaged: dict[str, np.ndarray], queries: np.ndarray, table: pa.Table,
           cat: Catalogue) -> dict[str, dict[str, dict[str, float]]]:
    """``{slice kind: {value: {"queries": n, "mrr@20": .., "map@20": .., "ndcg@20": ..}}}``."""
    kinds = {"source": np.array(table["source"].to_pylist(), dtype=object)[queries],
             "family size": np.array([size_bucket(int(s)) for s in cat.family_size[queries]],
                                     dtype=object),
             "coarse": np.array(table["coarse_label"].to_pylist(), dtype=object)[queries]}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind, values in kinds.items():
        out[kind] = {}
        for value in sorted(set(values)):
            keep = values == value
            out[kind][str(value)] = {"queries": int(keep.sum()), **{
                m: round(float(np.mean(averaged[m][keep])), 4) for m in METRICS
                if m.endswith("@20")}}
    return out


def _count(choices: list[Any]) -> dict[str, int]:
    """How often each setting was chosen: ``{"rounds 2": 3, "rounds 1, weight 0.2": 1, ...}``."""
    def label(choice: Any) -> str:
        if isinstance(choice, dict):
            return ", ".join(f"{k} {v}" for k, v in sorted(choice.items()))
        return choice if isinstance(choice, str) else f"rounds {choice}"

    return dict(Counter(label(c) for c in choices if c is not None))


__all__ = ["METHODS", "PROTOCOLS", "bag_rows", "benchmark", "bootstrap_ci", "score",
           "task_records"]
