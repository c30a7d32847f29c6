"""Retrieval metrics of the evaluation protocol (DESIGN.md), in numpy.

Each test query ranks every other record (train and test, never itself) by cosine similarity;
relevant = same label; binary gain. With ``R`` the number of records relevant to the query:

* MRR@k: 1 / rank of the first relevant result within k, else 0;
* AP@k: (1 / min(R, k)) * sum_{i<=k} P@i * rel_i  (the min(R, k) denominator, as the paper);
* NDCG@k: DCG = sum_{i<=k} rel_i / log2(i + 1), over the ideal DCG of min(R, k) relevant results.

Queries with no relevant record anywhere (R = 0) are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch

KS = (20, 50, 100)
BOOTSTRAP = 1000
"""Resamples of every bootstrap interval."""


def unit_rows(vectors: np.ndarray | sp.spmatrix) -> torch.Tensor | sp.csr_matrix:
    """Rows scaled to unit length: a float32 tensor, or a scipy CSR matrix when sparse."""
    if sp.issparse(vectors):
        norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(1))).ravel()
        return (sp.diags(1 / np.maximum(norms, 1e-12)) @ vectors).tocsr()
    return torch.nn.functional.normalize(torch.as_tensor(vectors, dtype=torch.float32), dim=1)


def cosine_topk(vectors: np.ndarray | sp.spmatrix, queries: np.ndarray, k: int,
                chunk: int = 1024,
                exclude: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Indices of the ``k`` most cosine-similar records to each query record, itself excluded,
    ties broken by record index so a ranking is reproducible. ``vectors`` is dense or a scipy
    sparse matrix (rows L2-normalised here). ``exclude(chunk_queries)`` may mark further
    records a query must not rank (a boolean ``[len(chunk_queries), num_records]``); they sort
    last."""
    queries = np.asarray(queries, dtype=np.int64)
    k = min(k, vectors.shape[0] - 1)
    out = np.empty((len(queries), k), dtype=np.int64)
    unit = unit_rows(vectors)
    for start in range(0, len(queries), chunk):
        q = queries[start:start + chunk]
        if sp.issparse(unit):
            sims = torch.from_numpy((unit[q] @ unit.T).toarray().astype(np.float32))
        else:
            sims = unit[torch.from_numpy(q)] @ unit.T
        if exclude is not None:
            sims[torch.from_numpy(exclude(q))] = -torch.inf
        out[start:start + chunk] = rank_rows(sims, q, k)
    return out


def rank_rows(sims: torch.Tensor, queries: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best columns of each row of ``sims`` (row i scores every record against
    ``queries[i]``), the query itself excluded, ties broken by record index (``sims`` is
    modified)."""
    sims[torch.arange(len(queries)), torch.from_numpy(queries)] = -torch.inf
    # a stable sort keeps equal scores in index order (topk does not promise that)
    return torch.sort(sims, dim=1, descending=True, stable=True).indices[:, :k].numpy()


def relevance(labels: np.ndarray, queries: np.ndarray, ranked: np.ndarray) -> tuple[np.ndarray,
                                                                                   np.ndarray]:
    """``rel[q, i]`` (the i-th result has the query's label) and ``R`` per query."""
    labels = np.asarray(labels)
    rel = labels[ranked] == labels[queries][:, None]
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return rel, counts[inverse[queries]] - 1


def retrieval_metrics(rel: np.ndarray, num_relevant: np.ndarray,
                      ks: Sequence[int] = KS) -> dict[str, float]:
    """``{"mrr@k", "map@k", "ndcg@k"}`` for each k, averaged over queries with R > 0."""
    keep = num_relevant > 0
    if not keep.any():
        return {f"{m}@{k}": float("nan") for k in ks for m in ("mrr", "map", "ndcg")}
    return {m: float(np.mean(v)) for m, v in per_query_metrics(rel[keep], num_relevant[keep],
                                                                 ks).items()}


def per_query_metrics(rel: np.ndarray, num_relevant: np.ndarray,
                      ks: Sequence[int] = KS) -> dict[str, np.ndarray]:
    """``{"mrr@k", "map@k", "ndcg@k"}``: one value per query (every R must be > 0)."""
    rel = rel.astype(np.float64)
    out: dict[str, np.ndarray] = {}
    positions = np.arange(1, rel.shape[1] + 1)
    discounts = 1.0 / np.log2(positions + 1)
    for k in ks:
        r = rel[:, :k]
        first = np.where(r.any(1), r.argmax(1) + 1, np.inf)
        precision = np.cumsum(r, 1) / positions[: r.shape[1]]
        denom = np.minimum(num_relevant, k)
        ideal = np.array([discounts[:n].sum() for n in denom])
        out[f"mrr@{k}"] = 1.0 / first
        out[f"map@{k}"] = (precision * r).sum(1) / denom
        out[f"ndcg@{k}"] = (r * discounts[: r.shape[1]]).sum(1) / ideal
    return out


def evaluate_vectors(vectors: np.ndarray | sp.spmatrix, labels: np.ndarray, queries: np.ndarray,
                     ks: Sequence[int] = KS) -> dict[str, float]:
    """The protocol end to end: rank every other record for each query, score by label."""
    ranked = cosine_topk(vectors, queries, max(ks))
    rel, num_relevant = relevance(labels, queries, ranked)
    return retrieval_metrics(rel, num_relevant, ks)


def bootstrap_ci(values: np.ndarray, resamples: int = BOOTSTRAP, seed: int = 0
                 ) -> list[float]:
    """The 2.5 and 97.5 percentiles of the mean of ``values`` over resampled entries (queries,
    networks or images)."""
    if not len(values):
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(resamples, len(values)))
    means = np.asarray(values)[draws].mean(1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)),
                                                              4)]
