"""Training and inference for every learned method, with one recipe (the paper's Table 5).

* :func:`train_nar`: stage 1, F_s and F_c with the motif contrastive loss (Eq. 4) over the
  distinct motifs of the training records; stage 2, F_m and the head over macro graphs built from
  the frozen motif embeddings, with Eq. 6 (or a Table-3 ablation), Eq. 7 as a whole.
* :func:`train_graph_encoder`: GCN or GAT on the raw graphs, same objective and recipe.
* :func:`train_vae`: the arch2vec-style graph VAE (unsupervised), same recipe.

Graphs are batched up to ``batch`` graphs and ``max_batch_nodes`` nodes, whichever comes first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from narbuild.encoder.data import NUM_OPS, Inputs, MotifData, Records
from narbuild.encoder.graphs import GraphBatch, GraphStore
from narbuild.encoder.losses import graph_objective, motif_contrastive, vae_loss
from narbuild.encoder.models import GraphEncoder, GraphVAE, NAREncoder
from narbuild.errors import NarbuildError

LOSSES = ("ce", "cl", "ce+cl")


@dataclass
class TrainConfig:
    """Hyper-parameters; defaults are the paper's Table 5 (motif CL, graph CL, baselines)."""

    dim: int = 512
    layers: int = 3
    dropout: float = 0.1
    motif_epochs: int = 5
    motif_batch: int = 256
    motif_lr: float = 1e-2
    epochs: int = 15
    batch: int = 512
    lr: float = 1e-3
    loss: str = "ce+cl"
    temperature: float = 0.1
    """Of the cosine similarities in Eqs. 4 and 5 (the paper leaves it unstated, i.e. 1)."""
    max_batch_nodes: int = 400_000
    seed: int = 0
    amp: bool = False
    """bfloat16 autocast while training on a GPU (inference always runs in float32)."""
    finetune_motifs: bool = False
    """Stage 2 also trains F_s (end to end) instead of freezing it after stage 1 (Eq. 7)."""
    readout: str = "mean"
    """NAR's graph readout: ``mean`` over macro nodes (the paper's), or ``distinct``: the mean
    over the graph's distinct motifs of their nodes' mean (blind to how often a block repeats)."""
    latent: int = 0
    """The graph VAE's latent width (arch2vec's 16); 0: ``dim``."""
    min_colour_records: int = 1
    """wl-metric's input: the WL colours seen in at least this many training records."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainStats:
    """Seconds per epoch of each stage, and the last loss of each epoch."""

    epoch_seconds: dict[str, list[float]] = field(default_factory=dict)
    losses: dict[str, list[float]] = field(default_factory=dict)

    def add(self, stage: str, seconds: float, loss: float) -> None:
        self.epoch_seconds.setdefault(stage, []).append(round(seconds, 3))
        self.losses.setdefault(stage, []).append(round(loss, 5))


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NarbuildError("--device cuda was asked for but no CUDA GPU is available",
                            "use --device auto or --device cpu")
    return torch.device(name)


def batches(ids: np.ndarray, size: int, rng: np.random.Generator | None = None,
            nodes: np.ndarray | None = None, max_nodes: int | None = None) -> Iterator[np.ndarray]:
    """``ids`` (shuffled when ``rng`` is given) in chunks of ``size`` ids and, when ``nodes``
    holds each id's node count, at most ``max_nodes`` nodes (a bigger graph goes alone)."""
    order = rng.permutation(ids) if rng is not None else np.asarray(ids)
    start = 0
    while start < len(order):
        end = min(start + size, len(order))
        if nodes is not None and max_nodes:
            fits = np.searchsorted(np.cumsum(nodes[order[start:end]]), max_nodes, side="right")
            end = start + max(1, int(fits))
        yield order[start:end]
        start = end


def seeded(seed: int) -> np.random.Generator:
    """torch seeded, and a numpy generator from the same seed."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def _autocast(cfg: TrainConfig, device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.amp and device.type == "cuda")


def _check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise NarbuildError(f"unknown loss {loss!r}", f"use one of {', '.join(LOSSES)}")


def _supervised(forward: Callable[[GraphBatch], torch.Tensor], head: torch.nn.Module,
                params: list[torch.nn.Parameter], store: GraphStore, records: Records,
                cfg: TrainConfig, device: torch.device, rng: np.random.Generator,
                stats: TrainStats, stage: str) -> None:
    """Train ``forward`` + ``head`` on the training records with the graph objective."""
    labels = torch.as_tensor(records.labels, device=device)
    nodes = store.num_nodes.cpu().numpy()
    opt = torch.optim.Adam(params, lr=cfg.lr)
    for _ in range(cfg.epochs):
        start, loss = time.perf_counter(), torch.zeros(())
        for ids in batches(records.train, cfg.batch, rng, nodes, cfg.max_batch_nodes):
            with _autocast(cfg, device):
                h = forward(store.batch(ids))
                loss = graph_objective(h.float(), head(h).float(), labels[ids], cfg.loss,
                                       cfg.temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
        stats.add(stage, time.perf_counter() - start, loss.item())


def train_nar(records: Records, motifs: MotifData, cfg: TrainConfig, device: torch.device,
              init: NAREncoder | None = None) -> tuple[NAREncoder, TrainStats]:
    """The two-stage NAR training (Eq. 7). ``init`` (e.g. pre-trained on NAS, Table 4) gets a
    new head for these records' families."""
    _check_loss(cfg.loss)
    rng, stats = seeded(cfg.seed), TrainStats()
    model = init or NAREncoder(NUM_OPS, len(records.label_names), cfg.dim, cfg.layers,
                               cfg.dropout, cfg.readout)
    if init is not None:
        model.head = torch.nn.Linear(cfg.dim, len(records.label_names))
    model.to(device).train()
    motif_store, context_store = motifs.motifs.to(device), motifs.contexts.to(device)
    train_motifs = np.unique(_macro_ids(motifs.macro, records.train))
    opt = torch.optim.Adam([*model.motif.parameters(), *model.context.parameters()],
                           lr=cfg.motif_lr)
    for _ in range(cfg.motif_epochs):
        start, loss = time.perf_counter(), torch.zeros(())
        for ids in batches(train_motifs, cfg.motif_batch, rng):
            if len(ids) < 2:
                continue
            with _autocast(cfg, device):
                loss = motif_contrastive(model.motif.pool(motif_store.batch(ids)).float(),
                                         model.context.pool(context_store.batch(ids)).float(),
                                         cfg.temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
        stats.add("motif", time.perf_counter() - start, loss.item())
    macro = motifs.macro.to(device)
    params = [*model.macro.parameters(), *model.head.parameters()]
    if cfg.finetune_motifs:
        params += list(model.motif.parameters())

        def forward(g: GraphBatch) -> torch.Tensor:
            ids, inverse = torch.unique(g.x, return_inverse=True)
            local = GraphBatch(inverse, g.edge_index, g.batch, g.num_graphs)
            return model(local, model.motif.pool(motif_store.batch(ids)))
    else:
        frozen = motif_embeddings(model, motifs.motifs, device)

        def forward(g: GraphBatch) -> torch.Tensor:
            return model(g, frozen)
    _supervised(forward, model.head, params, macro, records, cfg, device, rng, stats, "graph")
    return model.eval(), stats


def _macro_ids(macro: GraphStore, records: np.ndarray) -> np.ndarray:
    """The motif ids used by the macro graphs of ``records``."""
    ptr = macro.node_ptr.numpy()
    return np.concatenate([macro.x[ptr[r]:ptr[r + 1]].numpy() for r in records] or [[]]).astype(
        np.int64)


def train_graph_encoder(kind: str, records: Records, raw: GraphStore, cfg: TrainConfig,
                        device: torch.device) -> tuple[GraphEncoder, TrainStats]:
    """GCN or GAT (``kind``) on the raw operator graphs, the graph objective, same recipe."""
    _check_loss(cfg.loss)
    rng, stats = seeded(cfg.seed), TrainStats()
    model = GraphEncoder(kind, NUM_OPS, len(records.label_names), cfg.dim, cfg.layers,
                         cfg.dropout).to(device).train()
    _supervised(model, model.head, list(model.parameters()), raw.to(device), records, cfg,
                device, rng, stats, "graph")
    return model.eval(), stats


def train_vae(records: Records, raw: GraphStore, cfg: TrainConfig,
              device: torch.device) -> tuple[GraphVAE, TrainStats]:
    """The graph VAE on the training records' raw graphs (no labels), same recipe."""
    rng, stats = seeded(cfg.seed), TrainStats()
    model = GraphVAE(NUM_OPS, cfg.dim, cfg.layers, cfg.dropout, cfg.latent).to(device).train()
    store, nodes = raw.to(device), raw.num_nodes.numpy()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    for _ in range(cfg.epochs):
        start, loss = time.perf_counter(), torch.zeros(())
        for ids in batches(records.train, cfg.batch, rng, nodes, cfg.max_batch_nodes):
            g = store.batch(ids)
            with _autocast(cfg, device):
                mu, logvar = model.encode(g)
                z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
                loss = vae_loss(model.ops(z).float(), g.x, z.float(), g.edge_index, mu.float(),
                                logvar.float())
            opt.zero_grad()
            loss.backward()
            opt.step()
        stats.add("graph", time.perf_counter() - start, loss.item())
    return model.eval(), stats


@torch.no_grad()
def motif_embeddings(model: NAREncoder, motifs: GraphStore, device: torch.device,
                     batch: int = 4096) -> torch.Tensor:
    """F_s of every distinct motif, ``[num_motifs, dim]`` on ``device``."""
    was_training = model.training
    model.eval()
    store = motifs.to(device)
    out = [model.motif.pool(store.batch(ids))
           for ids in batches(np.arange(len(store)), batch)]
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, model.head.in_features, device=device)


@torch.no_grad()
def embed_graphs(forward: Callable[[GraphBatch], torch.Tensor], store: GraphStore,
                 device: torch.device, batch: int = 512, max_nodes: int = 400_000,
                 ids: np.ndarray | None = None) -> np.ndarray:
    """``forward`` over the graphs ``ids`` (default: all) of ``store`` in batches, as a float32
    array."""
    store, nodes = store.to(device), store.num_nodes.cpu().numpy()
    ids = np.arange(len(store)) if ids is None else np.asarray(ids)
    out = [forward(store.batch(chunk)).float().cpu()
           for chunk in batches(ids, batch, None, nodes, max_nodes)]
    return torch.cat(out).numpy()


def embed_nar(model: NAREncoder, motifs: MotifData, device: torch.device) -> np.ndarray:
    """Eq. 8 for every record: F_m over the macro graph of F_s motif embeddings."""
    model.to(device).eval()
    embeddings = motif_embeddings(model, motifs.motifs, device)
    return embed_graphs(lambda g: model(g, embeddings), motifs.macro, device)


def train_method(method: str, inputs: Inputs, cfg: TrainConfig, device: torch.device,
                 init: NAREncoder | None = None) -> tuple[torch.nn.Module, TrainStats]:
    """Train ``method`` (nar, gcn, gat or vae) on the training records of ``inputs``."""
    if method == "nar":
        return train_nar(inputs.records, inputs.motifs, cfg, device, init=init)
    if method in ("gcn", "gat"):
        return train_graph_encoder(method, inputs.records, inputs.raw, cfg, device)
    if method == "vae":
        return train_vae(inputs.records, inputs.raw, cfg, device)
    raise NarbuildError(f"unknown method {method!r}", "use nar, gcn, gat or vae (wlm trains "
                        "through its registry entry, narbuild.encoder.methods)")


def vectors_of(method: str, model: torch.nn.Module, inputs: Inputs,
               device: torch.device) -> np.ndarray:
    """Every record of ``inputs`` embedded by a trained ``method`` model."""
    model.to(device).eval()
    if method == "nar":
        return embed_nar(model, inputs.motifs, device)
    if method == "wlm":
        return model.embed(*inputs.wl_counts(model.rounds))
    return embed_graphs(model, inputs.raw, device)
