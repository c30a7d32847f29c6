"""Trace one manifest row, walking down a fallback ladder until a step succeeds.

Every graphs row records the step that produced it, so a figure can be reproduced:

1. ``meta``          weightless build on the meta device, float32 (the default)
2. ``meta-bf16``     the same in bfloat16 (mixture-of-experts grouped matmul wants it)
3. ``cpu``           real CPU tensors, for models under :data:`CPU_PARAM_BUDGET` parameters
                     (data-dependent code: ``.item()``, NMS, masks built from values)
4. ``text-only``     transformers: text inputs alone (vision-language models whose image
                     placeholders cannot be checked on meta), on meta then CPU
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import torch

from narbuild import __version__
from narbuild.tracing.build import build
from narbuild.tracing.inputs import NotApplicable
from narbuild.tracing.core import TraceResult, count_params, trace_module

CPU_PARAM_BUDGET = 200_000_000
"""Largest model (parameters) traced on real CPU tensors; 0.8 GB of float32 weights."""

Step = tuple[str, str, torch.dtype, str]  # (name, device, dtype, build step)
LADDER: list[Step] = [
    ("meta", "meta", torch.float32, "default"),
    ("meta-bf16", "meta", torch.bfloat16, "default"),
    ("cpu", "cpu", torch.float32, "default"),
    ("text-only", "meta", torch.float32, "text-only"),
    ("text-only-cpu", "cpu", torch.float32, "text-only"),
]


def one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text[:limit]}"


def trace_config(source: str, config: dict[str, Any]) -> tuple[TraceResult, str, str]:
    """Trace a model by source and config; returns (result, step name, attention path)."""
    errors: list[str] = []
    params: int | None = None
    for name, device, dtype, step in LADDER:
        if step == "text-only" and source not in ("transformers", "hf-hub"):
            continue
        if device == "cpu" and (params is None or params > CPU_PARAM_BUDGET):
            continue
        try:
            built = build(source, config, device=device, dtype=dtype, step=step)
            params = count_params(built.model) if params is None else params
            if device == "cpu" and params > CPU_PARAM_BUDGET:
                continue
            result = trace_module(built.model, built.inputs)
            return result, name, built.attention
        except NotApplicable:
            continue
        except Exception as exc:  # noqa: BLE001 - each failure moves one step down
            errors.append(f"{name}: {one_line(exc)}")
        finally:
            built = None
    raise TraceFailed(errors)


class TraceFailed(RuntimeError):
    """Every step of the ladder failed; ``errors`` says why, step by step."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__(errors[0] if errors else "nothing to try")

    def summary(self) -> str:
        """The first failure (the one on the default path) and the last one."""
        if len(self.errors) <= 1:
            return self.errors[0] if self.errors else "no applicable trace step"
        return f"{self.errors[0]} | last: {self.errors[-1]}"


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
        "torch_version": torch.__version__, "narbuild_version": __version__, "traced_at": now(),
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


def trace_manifest_row(row: dict[str, Any]) -> dict[str, Any]:
    """Trace a manifest row into a graphs row; failures become error rows, never raise."""
    start = time.perf_counter()
    try:
        config = json.loads(row["config"])
        result, step, attention = trace_config(row["source"], config)
    except TraceFailed as exc:
        return graphs_row(row["model_id"], row["config_hash"], error=exc.summary(),
                          step=LADDER[-1][0], seconds=time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - a bad row must not stop the run
        return graphs_row(row["model_id"], row["config_hash"], error=one_line(exc),
                          seconds=time.perf_counter() - start)
    return graphs_row(row["model_id"], row["config_hash"], result, step, attention,
                      seconds=time.perf_counter() - start)
