"""Train one DARTS-space network on the digits and record what the IO-dataset keeps.

The paper trains NAS-Bench-101 networks (128 initial filters) for 12 epochs with SGD (momentum
0.9, learning rate 0.025 annealed to 0 by a cosine schedule, weight decay 1e-4, gradient-norm
clipping at 5, batch size 128), with CIFAR's crop-and-flip augmentation, on a GPU. Here about
675 networks must train on one CPU thread within an hour, so (measured on this machine,
about 5 s a network):

- the network is narbuild's DARTS network (:class:`narbuild.nasgen.modules.DartsNetwork`) at
  width 4 (feature vector of 16 x 4 = 64 instead of 512) with 5 cells (normal, reduction,
  normal, reduction, normal), one input channel and 10 classes (the same genotype the ``nas``
  table describes at 8 cells and width 16 on 3x32x32 inputs);
- 3 epochs at batch size 64 and learning rate 0.1 (in our trials the paper's 0.025 at batch
  128 reached 0.22 mean validation accuracy after 4 epochs, 0.1 at batch 64 0.96 after 3);
  the optimiser, momentum, schedule, weight decay and clipping are the paper's;
- no augmentation: flips do not suit digits, and a random one-pixel shift (CIFAR's
  pad-and-crop) cost accuracy at this budget (0.76 instead of 0.94 after 2 epochs in a trial).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from narbuild.nasgen.genotype import Genotype, parse_genotype
from narbuild.nasgen.modules import DartsNetwork
from narbuild.nasio.data import IMAGE_SHAPE, NUM_CLASSES, Images


@dataclass(frozen=True)
class TrainSettings:
    """The fixed training budget of every network (recorded in the table's settings)."""

    epochs: int = 3
    width: int = 4
    depth: int = 5
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    grad_clip: float = 5.0

    def as_dict(self) -> dict:
        return {**asdict(self), "optimizer": "SGD", "lr_schedule": "cosine annealing to 0",
                "augmentation": "none", "threads": 1}


@dataclass(frozen=True)
class Trained:
    """One trained network: accuracies, global-average-pooled features on the validation
    and unseen images, the last dense layer, and cost."""

    accuracy: float
    unseen_accuracy: float
    train_loss: float
    val_features: np.ndarray  # (validation images, features) float32
    unseen_features: np.ndarray  # (unseen images, features) float32
    weight: np.ndarray  # (classes, features) float32
    bias: np.ndarray  # (classes,) float32
    params: int
    seconds: float


def build_network(genotype: str | Genotype, settings: TrainSettings) -> DartsNetwork:
    """The genotype's network at the settings' width and depth, for 1x8x8 digit images."""
    if isinstance(genotype, str):
        genotype = parse_genotype(genotype)
    return DartsNetwork(genotype, depth=settings.depth, channels=settings.width,
                        num_classes=NUM_CLASSES, in_channels=IMAGE_SHAPE[0])


def train_network(genotype: str | Genotype, images: Images, settings: TrainSettings,
                  seed: int) -> Trained:
    """Build the network with ``seed``, train it, and record its outputs (deterministic on
    one CPU thread)."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    net = build_network(genotype, settings)
    loss = _fit(net, images, settings, torch.Generator().manual_seed(seed))
    val_features, val_logits = _outputs(net, images.val_x)
    unseen_features, unseen_logits = _outputs(net, images.unseen_x)
    return Trained(
        accuracy=_accuracy(val_logits, images.val_y),
        unseen_accuracy=_accuracy(unseen_logits, images.unseen_y), train_loss=loss,
        val_features=val_features, unseen_features=unseen_features,
        weight=net.classifier.weight.detach().numpy().copy(),
        bias=net.classifier.bias.detach().numpy().copy(),
        params=sum(p.numel() for p in net.parameters()),
        seconds=time.perf_counter() - start)


def _fit(net: nn.Module, images: Images, s: TrainSettings, gen: torch.Generator) -> float:
    """SGD with momentum, cosine annealing to 0 and gradient clipping; the last epoch's mean
    training loss."""
    x, y = torch.from_numpy(images.train_x), torch.from_numpy(images.train_y)
    batches = -(-len(y) // s.batch_size)
    opt = torch.optim.SGD(net.parameters(), lr=s.lr, momentum=s.momentum,
                          weight_decay=s.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, s.epochs * batches)
    net.train()
    for _ in range(s.epochs):
        order, total = torch.randperm(len(y), generator=gen), 0.0
        for i in range(0, len(y), s.batch_size):
            idx = order[i:i + s.batch_size]
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), s.grad_clip)
            opt.step()
            schedule.step()
            total += loss.item() * len(idx)
    return total / len(y)


def _outputs(net: DartsNetwork, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pooled features = input of the last dense layer, logits) in eval mode."""
    seen: list[torch.Tensor] = []
    hook = net.classifier.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    try:
        net.eval()
        with torch.no_grad():
            logits = net(torch.from_numpy(x))
    finally:
        hook.remove()
    return seen[0].numpy().astype(np.float32), logits.numpy()


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean())
