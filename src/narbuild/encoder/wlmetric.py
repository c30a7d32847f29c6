"""A learned metric over Weisfeiler-Lehman colours (#19's "WL colours as features").

A graph is the presence of its WL colours (rounds 0..``rounds``) over the colours of the training
records, weighted by the idf over the training families (``wl-fam``'s bag, :mod:`wl`), and
embedded by one learned linear map: ``normalize(x @ P)``. It is a GNN with WL colours as node
features and a sum readout, with no message passing left to learn. ``P`` starts as a random
projection (so the first cosines are ``wl-fam``'s, up to the projection's distortion) and is
trained with the graph contrastive loss (Eq. 5) over the training families, in blocks of
:data:`STEPS` steps; the block kept is the one with the best MAP@20 on a validation split cut
from the training records (:func:`narbuild.encoder.data.validation_split`), never on test
queries. The kept map is rounded to int8 with a scale per row (:func:`quantize`), as its
checkpoint stores it.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from narbuild.encoder.data import Records, validation_split
from narbuild.encoder.losses import graph_contrastive
from narbuild.encoder.metrics import evaluate_vectors
from narbuild.encoder.models import csr_tensor
from narbuild.encoder.train import TrainConfig, TrainStats, seeded
from narbuild.encoder.wl import FAMILY_ROUNDS, family_rows, presence_rows

STEPS = 25
"""Optimiser steps per epoch (one validation check each)."""


class WLMetric(nn.Module):
    """``normalize(x @ proj)`` of a graph's idf-weighted WL colour presence ``x``."""

    def __init__(self, num_colours: int, dim: int, rounds: int = FAMILY_ROUNDS) -> None:
        super().__init__()
        self.rounds = rounds
        self.register_buffer("colours", torch.zeros(num_colours, dtype=torch.int64))
        """The training colours (uint64 hashes stored as int64), sorted as uint64."""
        self.register_buffer("idf", torch.ones(num_colours))
        self.proj = nn.Parameter(torch.randn(num_colours, dim) / dim ** 0.5)

    def rows(self, counts: sp.csr_matrix, found: np.ndarray) -> sp.csr_matrix:
        """Each graph's unit-length idf-weighted presence row over the training colours, from
        its WL colour ``counts`` over the colours ``found`` (:func:`wl.wl_counts` at
        ``self.rounds``); colours the training records never showed are dropped."""
        return presence_rows(self.colours.cpu().numpy().view(np.uint64),
                             self.idf.cpu().numpy(), counts, found)

    def forward(self, rows: sp.csr_matrix) -> torch.Tensor:
        return F.normalize(torch.sparse.mm(_tensor(rows, self.proj.device), self.proj), dim=1)

    @torch.no_grad()
    def embed(self, counts: sp.csr_matrix, found: np.ndarray) -> np.ndarray:
        """The vectors of the graphs with WL colour ``counts`` (see :meth:`rows`)."""
        return self(self.rows(counts, found)).float().cpu().numpy()


def _tensor(rows: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    rows = rows.tocsr().astype(np.float32)
    return csr_tensor(*(torch.from_numpy(a).to(device) for a in (
        rows.indptr.astype(np.int64), rows.indices.astype(np.int64), rows.data)), rows.shape[1])


def train_wl_metric(records: Records, counts: sp.csr_matrix, colours: np.ndarray,
                    cfg: TrainConfig, device: torch.device) -> tuple[WLMetric, TrainStats]:
    """:class:`WLMetric` fitted on ``records``' training rows, from their WL colour ``counts``
    over ``colours`` (:func:`wl.wl_counts` at :data:`FAMILY_ROUNDS`): ``cfg.epochs`` blocks of
    :data:`STEPS` steps of ``cfg.batch`` records, Adam at ``cfg.lr``, the contrastive loss at
    ``cfg.temperature``; the block with the best validation MAP@20 is kept (block 0: the
    untrained projection)."""
    rng, train = seeded(cfg.seed), records.train
    seen = np.flatnonzero(np.asarray((counts[train] > 0).sum(0)).ravel()
                          >= max(cfg.min_colour_records, 1))
    rows, idf = family_rows(counts[:, seen].tocsr(), records.labels, train)
    model = WLMetric(len(seen), cfg.dim).to(device)
    model.colours.copy_(torch.from_numpy(colours[seen].view(np.int64)))
    model.idf.copy_(torch.from_numpy(idf.astype(np.float32)))
    fit, held = validation_split(train, records.labels, cfg.seed)
    labels = torch.as_tensor(records.labels, device=device)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    stats, best = TrainStats(), (-1.0, copy.deepcopy(model.state_dict()))
    for epoch in range(cfg.epochs + 1):
        start = time.perf_counter()
        loss = torch.zeros(())
        for _ in range(STEPS if epoch else 0):
            picked = rng.choice(fit, min(cfg.batch, len(fit)), replace=False)
            loss = graph_contrastive(model(rows[picked]), labels[picked], cfg.temperature)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        score = _validation_map(model, rows, records.labels, train, held)
        if score > best[0]:
            best = (score, copy.deepcopy(model.state_dict()))
        stats.add("graph", time.perf_counter() - start, float(loss.detach()))
    model.load_state_dict(best[1])
    with torch.no_grad():  # rounded as a checkpoint stores it: a reload embeds the same
        model.proj.copy_(dequantize(*quantize(model.proj)))
    return model, stats


def quantize(proj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``proj`` as int8 with one float32 scale per row: how a checkpoint stores the map (a
    quarter of float32's size; the bundled real-set map has 56k rows)."""
    scale = proj.detach().abs().amax(1, keepdim=True).float().clamp_min(1e-12) / 127
    return torch.round(proj.detach() / scale).to(torch.int8), scale


def dequantize(values: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The float32 map of :func:`quantize`'s int8 ``values`` and row ``scale``."""
    return values.float() * scale


def _validation_map(model: WLMetric, rows: sp.csr_matrix, labels: np.ndarray,
                    train: np.ndarray, held: np.ndarray) -> float:
    """MAP@20 of the ``held`` queries ranked among the training records."""
    if not len(held):
        return 0.0
    with torch.no_grad():
        vectors = model(rows[train]).cpu().numpy()
    queries = np.searchsorted(train, held)
    return evaluate_vectors(vectors, labels[train], queries, ks=(20,))["map@20"]
