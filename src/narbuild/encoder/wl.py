"""The training-free baseline: Weisfeiler-Lehman operator-hash histograms, TF-IDF, cosine.

Every node is coloured by its operator, then recoloured ``rounds`` times from its own colour and
the multisets of its parents' and children's colours (:func:`narbuild.tracing.graph.wl_colours`,
the recolouring behind the graph hash). A graph is the bag of all its nodes' colours over every
round; bags are weighted by TF-IDF (smoothed idf, as scikit-learn's default) and L2-normalised, so
a dot product is the cosine similarity.

:func:`wl_family_tfidf` (eval's ``wl-fam``) is the same bag fitted to the training families: the
presence of each colour (not its count) over rounds 0..2, weighted by an idf over *families* (the
training records' labels) instead of records. A colour that every model of one big family shares,
and few other families have, keeps a high weight; plain idf gives it a low one because many
records hold it. Its rounds, binary presence and family idf were chosen on a validation split cut
from the training records (``bench/bench_wl_family.py``), never on the test queries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from narbuild.hashing import mix64
from narbuild.tracing.graph import wl_colours

if TYPE_CHECKING:  # the numpy core below needs no torch: search imports it without
    from narbuild.encoder.graphs import GraphStore

DEFAULT_ROUNDS = 3


def wl_tfidf(graphs: GraphStore, rounds: int = DEFAULT_ROUNDS) -> sp.csr_matrix:
    """One L2-normalised TF-IDF row per graph, over WL colours of rounds 0..``rounds``."""
    counts, _ = wl_counts(graphs, rounds)
    return tfidf_rows(counts, idf_weights(counts))


def wl_counts(graphs: GraphStore, rounds: int = DEFAULT_ROUNDS
              ) -> tuple[sp.csr_matrix, np.ndarray]:
    """Colour counts, one row per graph, and the colour of each column (sorted uint64)."""
    return colour_counts(graphs.x.numpy(), graphs.src.numpy(), graphs.dst.numpy(),
                         graphs.num_nodes.numpy(), (graphs.edge_ptr[1:] - graphs.edge_ptr[:-1])
                         .numpy(), rounds)


def colour_counts(ops: np.ndarray, src: np.ndarray, dst: np.ndarray, node_sizes: np.ndarray,
                  edge_sizes: np.ndarray, rounds: int = DEFAULT_ROUNDS
                  ) -> tuple[sp.csr_matrix, np.ndarray]:
    """:func:`wl_counts` of graphs given as flat arrays: operator ids, per-graph (local) edge
    ends, and each graph's node and edge counts."""
    owner = np.repeat(np.arange(len(node_sizes)), node_sizes)
    base = np.r_[0, np.cumsum(node_sizes)[:-1]].astype(np.int64)
    edge_owner = np.repeat(np.arange(len(node_sizes)), edge_sizes)
    src = np.asarray(src, np.int64) + base[edge_owner]
    dst = np.asarray(dst, np.int64) + base[edge_owner]
    colours = np.concatenate(wl_colours(mix64(np.asarray(ops), 7), src, dst, rounds))
    owners = np.tile(owner, rounds + 1)
    features, column = _sorted_codes(colours)
    counts = sp.csr_matrix((np.ones(len(column)), (owners, column)),
                           shape=(len(node_sizes), len(features)))
    counts.sum_duplicates()
    return counts, features


def record_counts(record: dict[str, Any], rounds: int = DEFAULT_ROUNDS
                  ) -> tuple[sp.csr_matrix, np.ndarray]:
    """:func:`colour_counts` of one processed record (its ``op_ids`` and edge lists)."""
    ops, src = np.asarray(record["op_ids"]), np.asarray(record["edge_src"])
    return colour_counts(ops, src, np.asarray(record["edge_dst"]), np.array([len(ops)]),
                         np.array([len(src)]), rounds)


def _sorted_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` by hashing (pandas.factorize) and sorting only
    the distinct values: 3x faster on the millions of colours of a NAS catalog."""
    import pandas as pd

    codes, uniques = pd.factorize(values)
    order = np.argsort(uniques)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return uniques[order], rank[codes]


def idf_weights(counts: sp.csr_matrix, groups: np.ndarray | None = None) -> np.ndarray:
    """Smoothed idf of each column: ``log((1 + n) / (1 + df)) + 1``. With ``groups`` (one label
    per row), n and df count groups instead of rows: df is the number of groups holding it."""
    if groups is None:
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        return np.log((1 + counts.shape[0]) / (1 + df)) + 1
    _, group = np.unique(np.asarray(groups), return_inverse=True)
    owner = np.repeat(group, np.diff(counts.indptr))
    held = sp.csr_matrix((np.ones(len(owner)), (owner, counts.indices)),
                         shape=(group.max() + 1, counts.shape[1]))
    held.sum_duplicates()
    df = np.bincount(held.indices, minlength=counts.shape[1])
    return np.log((1 + held.shape[0]) / (1 + df)) + 1


FAMILY_ROUNDS = 2
"""WL rounds of :func:`wl_family_tfidf` (chosen on a validation split of the training records)."""

WL_METHODS = {"wl": DEFAULT_ROUNDS, "wl-fam": FAMILY_ROUNDS}
"""The WL bag methods (eval's and search's) and their rounds."""


def wl_family_tfidf(graphs: GraphStore, labels: np.ndarray, fit: np.ndarray,
                    rounds: int = FAMILY_ROUNDS) -> sp.csr_matrix:
    """One unit row per graph: colour presence over rounds 0..``rounds``, weighted by the idf
    over the families (``labels``) of the ``fit`` rows (the training records)."""
    counts, _ = wl_counts(graphs, rounds)
    return family_rows(counts, labels, fit)[0]


def family_rows(counts: sp.csr_matrix, labels: np.ndarray, fit: np.ndarray
                ) -> tuple[sp.csr_matrix, np.ndarray]:
    """Colour presence rows weighted by the idf over the families of the ``fit`` rows, and that
    idf (``counts`` are turned into presence in place)."""
    counts.data[:] = 1
    fit = np.asarray(fit, dtype=np.int64)
    idf = idf_weights(counts[fit], np.asarray(labels)[fit])
    return tfidf_rows(counts, idf), idf


def tfidf_rows(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    """Counts weighted by ``idf``, each row scaled to unit length."""
    tfidf = counts.multiply(idf).tocsr()
    norms = np.sqrt(np.asarray(tfidf.multiply(tfidf).sum(1))).ravel()
    return sp.diags(1 / np.maximum(norms, 1e-12)) @ tfidf


def presence_rows(known: np.ndarray, idf: np.ndarray, counts: sp.csr_matrix,
                  found: np.ndarray) -> sp.csr_matrix:
    """Unit-length rows of colour presence over the ``known`` colours (sorted uint64) weighted
    by their ``idf``, from colour ``counts`` over the colours ``found``; other colours drop."""
    at = np.minimum(np.searchsorted(known, found), len(known) - 1)
    hit = known[at] == found
    counts = counts[:, np.flatnonzero(hit)].tocsr()
    counts.data[:] = 1
    counts = sp.csr_matrix((counts.data, at[hit][counts.indices], counts.indptr),
                           shape=(counts.shape[0], len(known)))
    return tfidf_rows(counts, idf)


FUSION_WEIGHT = 0.5
"""Weight of the learned encoder's cosine in :func:`fuse_with_wl` unless
:data:`FUSION_WEIGHTS` holds a validated one (fixed a priori, not tuned)."""

FUSION_WEIGHTS = {("real", "nar", "wl-fam"): 0.4, ("nas", "nar", "wl-fam"): 0.2,
                  ("real", "wl-metric", "wl-fam"): 0.8, ("nas", "wl-metric", "wl-fam"): 1.0}
"""The learned encoder's weight in a fusion with a WL method, per dataset and learned method,
chosen on validation queries: NAR's on a split cut from the training records
(``bench/bench_fusion_weight.py``), wl-metric's on benchmark v2's validation queries with
search's wl-fam rounds (``bench/bench_fusion_fixed.py``: on NAS, wl-fam adds nothing);
results in ``bench/results/``."""


def fusion_weight(dataset: str, wl_method: str, learned: str = "nar") -> float:
    """The ``learned`` encoder's weight when fused with ``wl_method`` on ``dataset``; a method
    without a validated weight of its own takes NAR's."""
    return FUSION_WEIGHTS.get((dataset, learned, wl_method),
                              FUSION_WEIGHTS.get((dataset, "nar", wl_method), FUSION_WEIGHT))


def fuse_with_wl(vectors: np.ndarray, wl: sp.csr_matrix,
                 weight: float = FUSION_WEIGHT) -> sp.csr_matrix:
    """Score-level fusion: rows whose cosine is ``weight`` x the encoder's cosine plus
    ``1 - weight`` x the WL TF-IDF cosine (both sides unit-normalised, then concatenated)."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return sp.hstack([sp.csr_matrix(np.sqrt(weight) * unit), np.sqrt(1 - weight) * wl]).tocsr()
