"""``narbuild eval --protocol io``: the arch2vec-IO paper's evaluations on the ``nas_io`` table.

Per seed, arch2vec-IO and arch2vec (the same batches without the output loss) are trained on
the workspace's NAS records and the table's training networks (:mod:`.arch2vec`). Then:

* **(a) validation L1** per epoch on unseen networks and unseen images, against the baseline
  that predicts the training outputs' mean vector (bootstrap 95 % intervals; Figures 3 and 4);
* **(b) performance prediction**: a random forest predicts each network's validation accuracy
  from a method's features, 5-fold cross-validated: Spearman's rho and R^2 of the out-of-fold
  predictions, for arch2vec, arch2vec-io, NAR (the bundled NAS encoder), WL (TF-IDF) and
  #params (the trained network's, log10);
* **(c) search**: REINFORCE over each embedding (:func:`reinforce`), the table's accuracies as
  the benchmark it queries, against random search: regret after each query;
* **(d) functional retrieval** (ours): relevant = the cosine of two networks' preprocessed
  outputs is at least a threshold chosen on the training networks as validation queries (the
  cosine that gives them :data:`RELEVANT` relevant networks on average); the unseen networks
  are the test queries; MAP@20 per method.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from narbuild.encoder.data import Inputs, Records, data_hash, raw_graphs
from narbuild.encoder.methods import learned
from narbuild.encoder.metrics import BOOTSTRAP, cosine_topk, per_query_metrics
from narbuild.encoder.train import TrainConfig, embed_graphs, resolve_device
from narbuild.encoder.wl import wl_tfidf
from narbuild.nasio.arch2vec import IOData, load_io, train_arch2vec
from narbuild.provenance import provenance
from narbuild.workspace import Workspace

LEARNED = ("arch2vec", "arch2vec-io")
PREDICTORS = (*LEARNED, "nar", "wl", "params")
RETRIEVERS = (*PREDICTORS, "random")
RELEVANT = 20
QUERY_COUNTS = (10, 25, 50, 100)
REDUCED = 64


def evaluate_io(ws: Workspace, seeds: Sequence[int] = (0, 1, 2), device: str = "auto",
                epochs: int | None = None, runs: int = 120, budget: int = 100,
                on_step: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The report of (a)-(d); ``epochs`` overrides arch2vec's 30 (e.g. for a quick run)."""
    from narbuild.encoder.data import load_records

    start, dev = time.perf_counter(), resolve_device(device)
    records = load_records(ws, "nas")
    inputs = Inputs(records)
    io = load_io(ws, records)
    features: dict[str, list[Any]] = {m: [] for m in PREDICTORS}
    curves: list[list[dict]] = []
    timing: dict[str, list[float]] = {m: [] for m in LEARNED}
    for seed in seeds:
        for method in LEARNED:
            cfg = learned(method).config(TrainConfig(seed=seed))
            cfg = replace(cfg, epochs=epochs or cfg.epochs)
            t0 = time.perf_counter()
            trained = train_arch2vec(records, inputs.raw, io, cfg, dev,
                                     use_outputs=method == "arch2vec-io")
            timing[method].append(time.perf_counter() - t0)
            features[method].append(embed_graphs(trained.model.vae, inputs.raw, dev,
                                                 ids=io.rows))
            if trained.curves:
                curves.append(trained.curves)
            if on_step:
                on_step(f"{method} seed {seed}")
    features["nar"].append(nar_vectors(records, io.rows, dev))
    features["wl"].append(wl_tfidf(raw_graphs(subset(records, io.rows))))
    features["params"].append(np.log10(io.params.astype(np.float64))[:, None])
    report = {
        "protocol": protocol(ws, records, io, seeds, epochs, runs, budget, dev),
        "losses": loss_curves(curves),
        "prediction": {m: predict_accuracy(features[m], io.accuracy, seeds) for m in PREDICTORS},
        "accuracy_retest": accuracy_retest(io),
        "search": search(features, io, seeds, runs, budget),
        "retrieval": functional_retrieval(features, io, seeds),
        "train_seconds": {m: round(float(np.mean(v)), 1) for m, v in timing.items()},
        "seconds": 0.0,
    }
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


def protocol(ws: Workspace, records: Records, io: IOData, seeds: Sequence[int],
             epochs: int | None, runs: int, budget: int, device: torch.device) -> dict[str, Any]:
    cfg = learned("arch2vec-io").config(TrainConfig())
    return {"name": "io", "networks": {"train": len(io.train), "val": len(io.val)},
            "nas_records": len(records), "data_hash": data_hash(records),
            "nas_io_hash": _io_hash(io), "seeds": list(seeds),
            "recipe": {**cfg.as_dict(), "epochs": epochs or cfg.epochs}, "runs": runs,
            "budget": budget, "relevant_per_validation_query": RELEVANT,
            "device": str(device), "torch": torch.__version__, **provenance()}


def _io_hash(io: IOData) -> str:
    import hashlib

    text = "\n".join(f"{m}:{s}:{a:.6f}" for m, s, a in zip(io.model_ids, io.split, io.accuracy))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def subset(records: Records, rows: np.ndarray) -> Records:
    """The records ``rows`` of ``records``, in that order."""
    rows = np.asarray(rows)
    return Records(records.table.take(rows), [records.record_ids[r] for r in rows],
                   records.labels[rows], records.label_names, records.split[rows])


def nar_vectors(records: Records, rows: np.ndarray, device: torch.device) -> np.ndarray:
    """The bundled NAS NAR encoder's vectors of the records ``rows``."""
    from narbuild.encoder.bundled import bundled_path
    from narbuild.encoder.checkpoint import load_checkpoint
    from narbuild.encoder.train import vectors_of

    model, _ = load_checkpoint(bundled_path("nar", "nas"))
    return vectors_of("nar", model, Inputs(subset(records, rows)), device)


# --- (a) ---------------------------------------------------------------------------------------

def loss_curves(curves: list[list[dict]]) -> list[dict[str, Any]]:
    """Per epoch, each validation set's L1 and baseline, averaged over seeds (the intervals
    too: each seed's is over the unseen networks or images)."""
    out = []
    for epoch in zip(*curves):
        row: dict[str, Any] = {"epoch": epoch[0]["epoch"]}
        for name in ("unseen_networks", "unseen_images"):
            keys = epoch[0][name].keys()
            row[name] = {k: round(float(np.mean([e[name][k] for e in epoch])), 4) for k in keys}
        out.append(row)
    return out


# --- (b) ---------------------------------------------------------------------------------------

def predict_accuracy(features: list[Any], accuracy: np.ndarray, seeds: Sequence[int],
                     folds: int = 5) -> dict[str, Any]:
    """Random-forest regression of ``accuracy``, ``folds``-fold cross-validated once per seed
    (with that seed's features when there is one per seed): Spearman and R^2 of the out-of-fold
    predictions, mean and std over seeds, and a bootstrap 95 % interval over networks of the
    seed-averaged predictions."""
    from scipy.stats import spearmanr
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold

    predictions = []
    for i, seed in enumerate(seeds):
        x = reduced(features[i % len(features)], seed)
        pred = np.empty(len(accuracy))
        for fit, held in KFold(folds, shuffle=True, random_state=seed).split(accuracy):
            forest = RandomForestRegressor(n_estimators=200, random_state=seed, n_jobs=-1)
            forest.fit(x[fit], accuracy[fit])
            pred[held] = forest.predict(x[held])
        predictions.append(pred)
    rho = [float(spearmanr(p, accuracy).statistic) for p in predictions]
    r2 = [float(r2_score(accuracy, p)) for p in predictions]
    mean_pred = np.mean(predictions, axis=0)
    rng = np.random.default_rng(0)
    samples = rng.integers(0, len(accuracy), (BOOTSTRAP, len(accuracy)))
    boot_rho = [spearmanr(mean_pred[s], accuracy[s]).statistic for s in samples]
    boot_r2 = [r2_score(accuracy[s], mean_pred[s]) for s in samples]
    return {"spearman": _stat(rho), "r2": _stat(r2),
            "spearman_ci": _ci(boot_rho), "r2_ci": _ci(boot_r2)}


def reduced(x: Any, seed: int, width: int = REDUCED) -> np.ndarray:
    """Features wider than ``width`` (NAR's 512, WL's tens of thousands of colours) as their
    first ``width`` truncated-SVD components, fitted without the accuracies: a forest over
    all of WL's columns takes minutes per fold."""
    if x.shape[1] <= width:
        return np.asarray(x.todense() if sp.issparse(x) else x)
    from sklearn.decomposition import TruncatedSVD

    return TruncatedSVD(width, random_state=seed).fit_transform(x)


def accuracy_retest(io: IOData) -> float:
    """Spearman's rho between each network's accuracy on the validation images and on the
    unseen images: how much of the accuracy ranking a second image sample reproduces, a
    ceiling on what any predictor of it can reach."""
    from scipy.stats import spearmanr

    return round(float(spearmanr(io.accuracy, io.unseen_accuracy).statistic), 4)


def _stat(values: list[float]) -> dict[str, float]:
    return {"mean": round(float(np.mean(values)), 4), "std": round(float(np.std(values)), 4)}


def _ci(values: Sequence[float]) -> list[float]:
    return [round(float(v), 4) for v in np.percentile(values, [2.5, 97.5])]


# --- (c) ---------------------------------------------------------------------------------------

def reinforce(embedding: np.ndarray, accuracy: np.ndarray, budget: int, seed: int,
              lr: float = 0.01, episode: int = 16, hidden: int = 128) -> np.ndarray:
    """One REINFORCE search over the networks' embeddings, as arch2vec's: the indices of the
    networks queried, in order.

    As in arch2vec's code: from a random first network, an LSTM policy maps the embedding of
    the last network queried to the mean of a Gaussian with identity covariance; the sampled
    point picks the nearest network (Euclidean) not queried yet, whose accuracy is the reward;
    the policy is updated with Adam after every ``episode`` queries. arch2vec subtracts a
    constant near NAS-Bench-101's best accuracy from the rewards; here the baseline is the mean
    reward of the queries before the episode, which needs no knowledge of the benchmark."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    space = torch.as_tensor(np.asarray(embedding, dtype=np.float32))
    d, budget = space.shape[1], min(budget, len(space))
    lstm, head = torch.nn.LSTMCell(d, hidden), torch.nn.Linear(hidden, d)
    opt = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=lr)
    seen = torch.zeros(len(space), dtype=torch.bool)
    current = int(torch.randint(len(space), (1,), generator=gen))
    order, seen[current] = [current], True
    while len(order) < budget:
        baseline = float(np.mean(accuracy[order]))
        state, log_probs, rewards = None, [], []
        for _ in range(min(episode, budget - len(order))):
            state = lstm(space[current][None], state)
            mean = head(state[0])[0]
            action = (mean + torch.randn(d, generator=gen)).detach()
            log_probs.append(-0.5 * ((action - mean) ** 2).sum())
            dist = ((space - action) ** 2).sum(1).masked_fill(seen, torch.inf)
            current = int(dist.argmin())
            seen[current] = True
            order.append(current)
            rewards.append(float(accuracy[current]) - baseline)
        loss = -(torch.stack(log_probs) * torch.tensor(rewards)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return np.array(order)


def regret_curve(orders: np.ndarray, accuracy: np.ndarray, test: np.ndarray) -> dict[str, Any]:
    """Regret after each query, (runs, budget): validation regret (best accuracy possible minus
    best found) and test regret (best test accuracy possible minus the test accuracy of the
    network with the best validation accuracy found)."""
    acc = accuracy[orders]
    best = np.maximum.accumulate(acc, axis=1)
    before = np.concatenate([np.full((len(acc), 1), -np.inf), best[:, :-1]], axis=1)
    # the first network that reached the best accuracy so far
    pick = np.maximum.accumulate(np.where(acc > before, np.arange(acc.shape[1]), 0), axis=1)
    chosen = np.take_along_axis(orders, pick, axis=1)
    return {"val": accuracy.max() - best, "test": test.max() - test[chosen]}


def search(features: dict[str, list[Any]], io: IOData, seeds: Sequence[int], runs: int,
           budget: int) -> dict[str, Any]:
    """(c): ``runs`` REINFORCE searches per learned method (spread over its seeds' embeddings)
    and ``runs`` random searches; mean regret per query with bootstrap 95 % intervals over
    runs."""
    out: dict[str, Any] = {}
    budget = min(budget, len(io.accuracy))
    for method in (*LEARNED, "random"):
        orders = []
        for run in range(runs):
            if method == "random":
                orders.append(np.random.default_rng(run).permutation(len(io.accuracy))[:budget])
            else:
                emb = features[method][run % len(features[method])]
                orders.append(reinforce(emb, io.accuracy, budget, seed=run))
        curve = regret_curve(np.array(orders), io.accuracy, io.unseen_accuracy)
        out[method] = {kind: _curve_summary(values) for kind, values in curve.items()}
    return out


def _curve_summary(regret: np.ndarray) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    boots = regret[rng.integers(0, len(regret), (BOOTSTRAP, len(regret)))].mean(1)
    lo, hi = np.percentile(boots, [2.5, 97.5], axis=0)
    return {"mean": np.round(regret.mean(0), 5).tolist(), "lo": np.round(lo, 5).tolist(),
            "hi": np.round(hi, 5).tolist()}


# --- (d) ---------------------------------------------------------------------------------------

def output_cosines(io: IOData) -> np.ndarray:
    """Cosine of every two networks' preprocessed outputs on the validation images."""
    flat = io.val_io.reshape(len(io.val_io), -1).astype(np.float64)
    flat /= np.linalg.norm(flat, axis=1, keepdims=True) + 1e-12
    return flat @ flat.T


def relevance_threshold(cos: np.ndarray, queries: np.ndarray, relevant: int = RELEVANT) -> float:
    """The cosine at which the ``queries`` have ``relevant`` relevant networks on average."""
    others = cos[queries].copy()
    others[np.arange(len(queries)), queries] = -np.inf
    values = np.sort(others[np.isfinite(others)])[::-1]
    return float(values[min(relevant * len(queries), len(values)) - 1])


def functional_retrieval(features: dict[str, list[Any]], io: IOData, seeds: Sequence[int],
                         k: int = 20) -> dict[str, Any]:
    """(d): MAP@``k`` of the unseen networks as queries over every other network, relevant =
    output cosine at least the threshold chosen on the training networks."""
    cos = output_cosines(io)
    tau = relevance_threshold(cos, io.train)
    queries = io.val
    num_relevant = (cos[queries] >= tau).sum(1) - 1
    keep = num_relevant > 0
    out: dict[str, Any] = {"threshold": round(tau, 4), "queries": int(keep.sum()),
                           "mean_relevant": round(float(num_relevant[keep].mean()), 1)
                           if keep.any() else 0.0, "methods": {}}
    rng = np.random.default_rng(0)
    for method in RETRIEVERS:
        per_seed = []
        for i in range(len(seeds) if method in (*LEARNED, "random") else 1):
            x = (rng.standard_normal((len(cos), 16)) if method == "random"
                 else features[method][i % len(features[method])])
            ranked = _ranked(x, queries[keep], k, euclidean=method == "params")
            rel = cos[queries[keep][:, None], ranked] >= tau
            per_seed.append(per_query_metrics(rel, num_relevant[keep], (k,))[f"map@{k}"])
        ap = np.mean(per_seed, axis=0)
        boots = ap[rng.integers(0, len(ap), (BOOTSTRAP, len(ap)))].mean(1)
        out["methods"][method] = {f"map@{k}": round(float(ap.mean()), 4), "ci": _ci(boots),
                                  "seeds": len(per_seed)}
    return out


def _ranked(x: Any, queries: np.ndarray, k: int, euclidean: bool) -> np.ndarray:
    """The ``k`` nearest networks to each query: by cosine, or by distance for a scalar."""
    if not euclidean:
        return cosine_topk(x if sp.issparse(x) else np.asarray(x), queries, k)
    dist = np.abs(x[queries] - x[:, 0][None, :])
    dist[np.arange(len(queries)), queries] = np.inf
    return np.argsort(dist, axis=1, kind="stable")[:, :k]
