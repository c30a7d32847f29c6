"""The learned methods: one table, read by eval (both protocols), embed and the CLI.

A method is an encoder (``nar``, ``gcn``, ``gat`` or ``vae``) with a training recipe: the
overrides of :class:`~narbuild.encoder.train.TrainConfig` that set it apart, and whether it
starts from NAR pre-trained on the NAS set. The training-free WL rankings (``wl``, ``wl-fam``)
and fusions (``<learned>+<wl method>``) are built on top of these in :mod:`narbuild.encoder.wl`
and :mod:`narbuild.benchmark.run`. A new method is one entry of :data:`LEARNED`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from narbuild.encoder.train import TrainConfig
from narbuild.errors import NarbuildError


@dataclass(frozen=True)
class Method:
    """A learned method: ``encoder`` trained with ``cfg`` plus ``overrides``."""

    name: str
    encoder: str
    doc: str
    overrides: dict[str, Any] = field(default_factory=dict)
    pretrain_on_nas: bool = False

    def config(self, cfg: TrainConfig) -> TrainConfig:
        return replace(cfg, **self.overrides)


LEARNED: dict[str, Method] = {m.name: m for m in (
    Method("nar", "nar", "the paper's two-stage motif encoder, CE+CL (Table 1, 'Ours')"),
    Method("nar-ce", "nar", "NAR with the cross-entropy term only (Table 3)", {"loss": "ce"}),
    Method("nar-cl", "nar", "NAR with the contrastive term only (Table 3; the bundled one)",
           {"loss": "cl"}),
    Method("nar-ft", "nar", "NAR-CE+CL with F_s fine-tuned in stage 2 instead of frozen",
           {"finetune_motifs": True}),
    Method("nar-nas", "nar", "NAR pre-trained on the NAS set, then trained here (Table 4)",
           pretrain_on_nas=True),
    Method("nar-set", "nar", "NAR-CL whose graph readout averages over distinct motifs, so "
           "repeating a block does not move the embedding", {"loss": "cl", "readout": "distinct"}),
    Method("gcn", "gcn", "GCN over the raw operator graph (Table 1 baseline)"),
    Method("gat", "gat", "GAT over the raw operator graph (Table 1 baseline)"),
    Method("vae", "vae", "an arch2vec-style graph VAE, unsupervised"),
)}


def learned(name: str) -> Method:
    """The learned method called ``name``; a clear error for an unknown one."""
    if name not in LEARNED:
        raise NarbuildError(f"unknown learned method {name!r}", f"use {', '.join(LEARNED)}")
    return LEARNED[name]
