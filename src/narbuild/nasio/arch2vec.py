"""arch2vec-IO (``shared/seeds``, section 3.3): arch2vec that also learns the ``nas_io``
networks' outputs.

The model is the arch2vec graph VAE (:class:`~narbuild.encoder.models.GraphVAE` at arch2vec's
sizes) plus a small CNN image encoder; the network vector (a dense layer over the graph's
latent) and the image vector are concatenated and predict the network's preprocessed output
features on that image. Training is semi-supervised, as the paper's: labelled batches (VAE loss
plus L1 on the outputs) alternate with unlabelled batches (VAE loss) in the paper's ratio of
300 to 200.

What this machine forces, and where it differs from the paper:

* graphs have tens to hundreds of nodes, not NAS-Bench-101's 7, so the latent matrix is
  mean-pooled before the dense layer instead of flattened;
* a labelled batch is ``cfg.batch`` networks, each with :data:`IMAGES_PER_NETWORK` of its
  validation images (the paper's batch is 32 (network, image) pairs);
* unlabelled graphs are every NAS record but the unseen validation networks.

The arch2vec baseline is trained "concurrently", as the paper's: the same batches and seed,
without the L1 term (``use_outputs=False``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow.compute as pc
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import global_mean_pool

from narbuild.encoder.data import NUM_OPS, Records
from narbuild.encoder.graphs import GraphStore
from narbuild.encoder.losses import vae_loss
from narbuild.encoder.metrics import bootstrap_ci
from narbuild.encoder.models import GraphVAE
from narbuild.encoder.train import TrainConfig, TrainStats, batches, embed_graphs
from narbuild.errors import NarbuildError
from narbuild.nasio.data import load_images
from narbuild.workspace import Workspace

IMAGES_PER_NETWORK = 8
LABELLED_RUN, UNLABELLED_RUN = 3, 2
"""The paper alternates 300 labelled and 200 unlabelled batches; an epoch here is one pass over
the labelled networks, so the same ratio runs in steps of 3 and 2."""


@dataclass
class IOData:
    """The ``nas_io`` table lined up with a workspace's NAS records.

    ``rows[i]`` is the record of network ``i``; ``val_io``/``unseen_io`` its preprocessed
    outputs (networks, images, F + 1) on the validation and the unseen images."""

    model_ids: list[str]
    rows: np.ndarray
    split: np.ndarray
    val_io: np.ndarray
    unseen_io: np.ndarray
    val_images: np.ndarray
    unseen_images: np.ndarray
    accuracy: np.ndarray
    unseen_accuracy: np.ndarray
    params: np.ndarray

    @property
    def train(self) -> np.ndarray:
        return np.flatnonzero(self.split == "train")

    @property
    def val(self) -> np.ndarray:
        return np.flatnonzero(self.split == "val")

    @property
    def out_dim(self) -> int:
        return self.val_io.shape[2]


def load_io(ws: Workspace, records: Records) -> IOData:
    """The workspace's complete ``nas_io`` table, each network matched to its NAS record."""
    table = ws.table("nas_io")
    if not table.exists():
        raise NarbuildError("the workspace has no nas_io table (arch2vec-io learns from it)",
                            "run `narbuild nas-io` first")
    rows = table.read(["model_id", "split", "val_io", "unseen_io", "accuracy",
                       "unseen_accuracy", "params", "settings", "features"]).sort_by("model_id")
    if rows.num_rows == 0 or rows.column("val_io").null_count:
        raise NarbuildError("the nas_io table is not complete: some sampled networks are not "
                            "trained yet", "re-run `narbuild nas-io` with the same options")
    record_of = {mid: i for i, ids in enumerate(records.table["model_ids"].to_pylist())
                 for mid in ids}
    model_ids = rows.column("model_id").to_pylist()
    missing = [m for m in model_ids if m not in record_of]
    if missing:
        raise NarbuildError(f"{len(missing)} nas_io networks (e.g. {missing[0]}) have no "
                            "processed NAS record", "run `narbuild preprocess` after gen-nas")
    settings = json.loads(rows.column("settings")[0].as_py())
    images = load_images(settings["seed"])
    f = rows.column("features")[0].as_py() + 1

    def outputs(name: str, n: int) -> np.ndarray:
        return pc.list_flatten(rows.column(name)).to_numpy().reshape(rows.num_rows, n, f)

    return IOData(model_ids, np.array([record_of[m] for m in model_ids]),
                  np.asarray(rows.column("split").to_pylist()),
                  outputs("val_io", len(images.val_y)), outputs("unseen_io", len(images.unseen_y)),
                  images.val_x, images.unseen_x, rows.column("accuracy").to_numpy(),
                  rows.column("unseen_accuracy").to_numpy(), rows.column("params").to_numpy())


class ImageEncoder(nn.Module):
    """The paper's image side: blocks of 3x3 convolutions with batch norm and ReLU, stride 2 at
    the end of every block, then global average pooling."""

    def __init__(self, in_channels: int = 1, widths: tuple[int, ...] = (32, 64, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in widths:
            layers += [nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width),
                       nn.ReLU(), nn.Conv2d(width, width, 3, stride=2, padding=1),
                       nn.BatchNorm2d(width), nn.ReLU()]
            in_channels = width
        self.body = nn.Sequential(*layers)
        self.out_dim = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean((2, 3))


class Arch2vecIO(nn.Module):
    """The arch2vec VAE, the image encoder and the output predictor (the paper's Figure 2).
    Called on a graph batch it is the VAE: the graph embedding is arch2vec's."""

    def __init__(self, vae: GraphVAE, latent: int, out_dim: int, width: int = 64) -> None:
        super().__init__()
        self.vae = vae
        self.network = nn.Linear(latent, width)
        self.images = ImageEncoder()
        self.head = nn.Sequential(nn.Linear(width + self.images.out_dim, 128), nn.ReLU(),
                                  nn.Linear(128, out_dim))

    def forward(self, g):
        return self.vae(g)

    def predict(self, graph_latent: torch.Tensor, images: torch.Tensor, net: torch.Tensor,
                image: torch.Tensor) -> torch.Tensor:
        """Outputs of network ``net[p]`` on image ``image[p]`` for each pair ``p``, given the
        networks' pooled latents and the images."""
        nets, pics = self.network(graph_latent), self.images(images)
        return self.head(torch.cat([nets[net], pics[image]], dim=1))


@dataclass
class Trained:
    """A trained model, its timings and, per epoch, the validation L1 losses (with outputs)."""

    model: Arch2vecIO
    stats: TrainStats
    curves: list[dict] = field(default_factory=list)


def train_arch2vec(records: Records, raw: GraphStore, io: IOData, cfg: TrainConfig,
                   device: torch.device, use_outputs: bool = True,
                   on_epoch: Callable[[int], None] | None = None) -> Trained:
    """arch2vec-IO (``use_outputs``) or arch2vec trained on the same batches without the L1
    term. With outputs, each epoch ends with the validation losses (:func:`validation_losses`)."""
    torch.manual_seed(cfg.seed)
    rng, stats = np.random.default_rng(cfg.seed), TrainStats()
    vae = GraphVAE(NUM_OPS, cfg.dim, cfg.layers, cfg.dropout, cfg.latent)
    model = Arch2vecIO(vae, cfg.latent or cfg.dim, io.out_dim).to(device).train()
    store = raw.to(device)
    targets = torch.tensor(io.val_io, device=device)
    images = torch.tensor(io.val_images, device=device)
    unlabelled = np.setdiff1d(np.arange(len(records)), io.rows[io.val])
    pool: list[np.ndarray] = []
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    trained = Trained(model, stats)

    def step(nets: np.ndarray | None, graphs: np.ndarray) -> float:
        g = store.batch(graphs)
        mu, logvar = model.vae.encode(g)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        loss = vae_loss(model.vae.ops(z), g.x, z, g.edge_index, mu, logvar)
        if nets is not None and use_outputs:
            picks = torch.from_numpy(rng.integers(0, len(images), (len(nets), IMAGES_PER_NETWORK)))
            net = torch.arange(len(nets)).repeat_interleave(IMAGES_PER_NETWORK).to(device)
            image = picks.ravel().to(device)
            pred = model.predict(global_mean_pool(z, g.batch, g.num_graphs), images, net, image)
            truth = targets[torch.from_numpy(nets).to(device)[net], image]
            loss = loss + F.l1_loss(pred, truth)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    def unlabelled_batch() -> np.ndarray:
        if not pool:
            pool.extend(batches(unlabelled, cfg.batch, rng))
        return pool.pop(0)

    for epoch in range(cfg.epochs):
        start, loss = time.perf_counter(), 0.0
        for i, nets in enumerate(batches(io.train, cfg.batch, rng)):
            loss = step(nets, io.rows[nets])
            if i % LABELLED_RUN == LABELLED_RUN - 1:
                for _ in range(UNLABELLED_RUN):
                    step(None, unlabelled_batch())
        stats.add("graph", time.perf_counter() - start, loss)
        if use_outputs:
            trained.curves.append({"epoch": epoch + 1, **validation_losses(model, store, io,
                                                                           device, cfg.seed)})
            model.train()
        if on_epoch:
            on_epoch(epoch + 1)
    model.eval()
    return trained


@torch.no_grad()
def predicted_outputs(model: Arch2vecIO, store: GraphStore, rows: np.ndarray,
                      images: np.ndarray, device: torch.device) -> np.ndarray:
    """(networks, images, F + 1): the model's outputs for every network ``rows`` x image."""
    model.eval()
    latent = torch.from_numpy(embed_graphs(model.vae, store, device, ids=rows)).to(device)
    pics = torch.tensor(images, device=device)
    out = []
    for start in range(0, len(rows), 64):
        chunk = latent[start:start + 64]
        net = torch.arange(len(chunk), device=device).repeat_interleave(len(pics))
        image = torch.arange(len(pics), device=device).repeat(len(chunk))
        out.append(model.predict(chunk, pics, net, image).reshape(len(chunk), len(pics), -1))
    return torch.cat(out).cpu().numpy()


def validation_losses(model: Arch2vecIO, store: GraphStore, io: IOData, device: torch.device,
                      seed: int = 0) -> dict[str, dict[str, float]]:
    """The paper's Figures 3 and 4: the L1 loss on unseen networks (validation networks on the
    validation images) and on unseen images (training networks on the unseen images), each with
    a bootstrap 95 % interval over the unseen networks or images, and the same for the
    baseline that predicts the training set's mean output vector."""
    mean = io.val_io[io.train].reshape(-1, io.out_dim).mean(0)
    # (networks, images, truth, the axis averaged: the other one is bootstrapped)
    sets = {"unseen_networks": (io.val, io.val_images, io.val_io, 1),
            "unseen_images": (io.train, io.unseen_images, io.unseen_io, 0)}
    out: dict[str, dict[str, float]] = {}
    for name, (nets, images, truth, axis) in sets.items():
        pred = predicted_outputs(model, store, io.rows[nets], images, device)
        model_l1 = np.abs(pred - truth[nets]).mean(2)  # (networks, images)
        base_l1 = np.abs(mean - truth[nets]).mean(2)
        out[name] = {**_mean_ci(model_l1.mean(axis), seed, "l1"),
                     **_mean_ci(base_l1.mean(axis), seed, "baseline")}
    return out


def _mean_ci(values: np.ndarray, seed: int, prefix: str) -> dict[str, float]:
    """Mean and bootstrap 95 % interval of ``values``."""
    lo, hi = bootstrap_ci(values, seed=seed)
    return {prefix: round(float(values.mean()), 4), f"{prefix}_lo": lo, f"{prefix}_hi": hi}
