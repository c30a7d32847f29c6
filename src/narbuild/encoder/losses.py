"""The training objectives of the NAR paper (Eqs. 4-6) and of the graph VAE."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def motif_contrastive(motifs: torch.Tensor, contexts: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """Eq. 4: each motif against its own context graph (positive) and the other motifs' context
    graphs in the batch (negatives), cosine similarity over ``temperature``."""
    logits = F.normalize(motifs, dim=1) @ F.normalize(contexts, dim=1).T / temperature
    return F.cross_entropy(logits, torch.arange(len(motifs), device=motifs.device))


def graph_contrastive(h: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Eq. 5: -log(sum over same-family graphs / sum over all other graphs) of exp(cosine / T),
    averaged over the graphs of the batch that have a same-family partner in it."""
    sims = F.normalize(h, dim=1) @ F.normalize(h, dim=1).T / temperature
    self_mask = torch.eye(len(h), dtype=torch.bool, device=h.device)
    sims = sims.masked_fill(self_mask, -torch.inf)
    positive = (labels[:, None] == labels[None, :]) & ~self_mask
    has_positive = positive.any(1)
    if not has_positive.any():
        return h.sum() * 0.0
    log_all = torch.logsumexp(sims, dim=1)
    log_pos = torch.logsumexp(sims.masked_fill(~positive, -torch.inf), dim=1)
    return (log_all - log_pos)[has_positive].mean()


def graph_objective(h: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, loss: str,
                    temperature: float) -> torch.Tensor:
    """Eq. 6 and the Table-3 ablations: ``ce``, ``cl`` or ``ce+cl``."""
    total = h.sum() * 0.0
    if "ce" in loss.split("+"):
        total = total + F.cross_entropy(logits, labels)
    if "cl" in loss.split("+"):
        total = total + graph_contrastive(h, labels, temperature)
    return total


def vae_loss(op_logits: torch.Tensor, ops: torch.Tensor, z: torch.Tensor,
             edge_index: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Reconstruct each node's operator and the edges (against as many random non-edges), plus
    the KL divergence of the node posteriors from N(0, I)."""
    pos = (z[edge_index[0]] * z[edge_index[1]]).sum(1)
    neg_index = torch.randint(0, len(z), edge_index.shape, device=z.device)
    neg = (z[neg_index[0]] * z[neg_index[1]]).sum(1)
    edges = F.binary_cross_entropy_with_logits(torch.cat([pos, neg]),
                                               torch.cat([torch.ones_like(pos),
                                                          torch.zeros_like(neg)]))
    kl = -0.5 * torch.mean(torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1))
    return F.cross_entropy(op_logits, ops) + edges + kl / z.shape[1]
