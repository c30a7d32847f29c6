"""The rows of the graphs table: one per traced model, for a success or a failure."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from narbuild._version import __version__

if TYPE_CHECKING:
    from narbuild.tracing.core import TraceResult


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def graphs_row(model_id: str, config_hash: str | None, result: TraceResult | None = None,
               step: str | None = None, attention: str | None = None,
               error: str | None = None, seconds: float = 0.0,
               peak_rss_mb: float | None = None) -> dict[str, Any]:
    """A row of the graphs table, for a success (``result``) or a failure (``error``)."""
    row: dict[str, Any] = {
        "model_id": model_id, "status": "error" if error else "ok", "error": error,
        "config_hash": config_hash, "fallback": step, "attention": attention,
        "wall_time_s": round(seconds, 4), "peak_rss_mb": peak_rss_mb,
        "torch_version": _torch_version(), "narbuild_version": __version__, "traced_at": now(),
    }
    if result is not None:
        g = result.graph
        row.update(
            nodes=g.nodes, edge_src=[s for s, _ in g.edges], edge_dst=[d for _, d in g.edges],
            num_nodes=len(g.nodes), num_edges=len(g.edges), graph_hash=g.graph_hash(),
            flops=result.flops, macs=result.macs, params=result.params,
            inputs=json.dumps(result.inputs), outputs=json.dumps(result.outputs),
            device=result.device, dtype=result.dtype,
        )
    return row


def _torch_version() -> str:
    import torch  # imported here: the caller of an isolated trace need not load torch

    return str(torch.__version__)  # a TorchVersion would import torch where the row is unpickled
