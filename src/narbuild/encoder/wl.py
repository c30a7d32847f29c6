"""The training-free baseline: Weisfeiler-Lehman operator-hash histograms, TF-IDF, cosine.

Every node is coloured by its operator, then recoloured ``rounds`` times from its own colour and
the multisets of its parents' and children's colours (:func:`narbuild.tracing.graph.wl_colours`,
the recolouring behind the graph hash). A graph is the bag of all its nodes' colours over every
round; bags are weighted by TF-IDF (smoothed idf, as scikit-learn's default) and L2-normalised, so
a dot product is the cosine similarity.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from narbuild.encoder.graphs import GraphStore
from narbuild.hashing import mix64
from narbuild.tracing.graph import wl_colours

DEFAULT_ROUNDS = 3


def wl_tfidf(graphs: GraphStore, rounds: int = DEFAULT_ROUNDS) -> sp.csr_matrix:
    """One L2-normalised TF-IDF row per graph, over WL colours of rounds 0..``rounds``."""
    sizes = graphs.num_nodes.numpy()
    owner = np.repeat(np.arange(len(sizes)), sizes)
    base = graphs.node_ptr[:-1].numpy()
    edge_owner = np.repeat(np.arange(len(sizes)), (graphs.edge_ptr[1:] - graphs.edge_ptr[:-1])
                           .numpy())
    src = graphs.src.numpy() + base[edge_owner]
    dst = graphs.dst.numpy() + base[edge_owner]
    colours = np.concatenate(wl_colours(mix64(graphs.x.numpy(), 7), src, dst, rounds))
    owners = np.tile(owner, rounds + 1)
    features, column = np.unique(colours, return_inverse=True)
    counts = sp.csr_matrix((np.ones(len(column)), (owners, column)),
                           shape=(len(sizes), len(features)))
    counts.sum_duplicates()
    df = np.bincount(counts.indices, minlength=len(features))
    idf = np.log((1 + len(sizes)) / (1 + df)) + 1
    tfidf = counts.multiply(idf).tocsr()
    norms = np.sqrt(np.asarray(tfidf.multiply(tfidf).sum(1))).ravel()
    return sp.diags(1 / np.maximum(norms, 1e-12)) @ tfidf
