"""Trace one model named by a spec: a model id, a config.json path, or ``file.py:factory``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from narbuild.crawler.base import content_hash, manifest_row
from narbuild.errors import NarbuildError, one_line
from narbuild.sources.file import infer_inputs, load_factory
from narbuild.tracing.core import trace_module
from narbuild.tracing.ladder import trace_manifest_row
from narbuild.tracing.rows import graphs_row

__all__ = ["canonical_attention", "infer_inputs", "spec_row", "trace_spec", "trace_user_module"]


def spec_row(spec: str) -> dict[str, Any] | None:
    """The manifest row a spec names, or None for a ``file.py:factory`` spec."""
    path, _, factory = spec.rpartition(":")
    if spec.endswith(".py") or (path.endswith(".py") and factory.isidentifier()):
        return None
    if spec.endswith(".json") or Path(spec).is_file():
        return _config_json_row(Path(spec))
    from narbuild.sources import lookup

    return lookup(spec)


def _config_json_row(path: Path) -> dict[str, Any]:
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise NarbuildError(f"no such file: {path}", "pass a path to a config.json") from exc
    except (OSError, ValueError) as exc:
        raise NarbuildError(f"{path} is not valid JSON ({exc})",
                            "pass a Hugging Face config.json") from exc
    if not isinstance(cfg, dict) or not (cfg.get("model_type") or cfg.get("architecture")):
        raise NarbuildError(f"{path} has no model_type (transformers) or architecture (timm)",
                            "pass a Hugging Face config.json")
    if "architecture" in cfg:
        from narbuild.sources.timm import check_local_architecture

        check_local_architecture(cfg["architecture"])
    return manifest_row("hf-hub", path.stem if path.stem != "config" else path.parent.name or "config",
                        {"repo_id": None, "library": None, "config": cfg}, id_prefix="file",
                        model_type=cfg.get("model_type"), architectures=cfg.get("architectures"))


def canonical_attention(model: torch.nn.Module) -> torch.nn.Module:
    """Switch a transformers model to eager attention, as the dataset's builds are: its graph
    is then comparable to the dataset's (SDPA itself is traced on the math path either way)."""
    switch = getattr(model, "set_attn_implementation", None)
    if callable(switch) and getattr(getattr(model, "config", None), "_attn_implementation",
                                    "eager") != "eager":
        try:
            switch("eager")
        except (ValueError, ImportError, AttributeError):  # a model that supports only one
            pass
    return model


def trace_spec(spec: str) -> dict[str, Any]:
    """Trace the model a spec names and return its graphs row (status ok or error).

    A ``file.py:factory`` model is built on the meta device first, as the dataset's are; a
    factory or model that needs real values (and fails there) is built again on the CPU."""
    row = spec_row(spec)
    if row is not None:
        return trace_manifest_row(row)
    try:
        return _trace_factory(spec, "meta")
    except Exception:  # noqa: BLE001 - any failure on meta: the CPU build decides
        return _trace_factory(spec, "cpu")


def _trace_factory(spec: str, device: str) -> dict[str, Any]:
    model_id, model, inputs = load_factory(spec, device)
    return trace_user_module(model_id, model, inputs, raise_errors=device == "meta")


def trace_user_module(model_id: str, model: torch.nn.Module, inputs: Any,
                      raise_errors: bool = False) -> dict[str, Any]:
    """Trace a module a user built (eager attention, eval mode) into a graphs row; a failed
    trace is an error row, or raises with ``raise_errors``."""
    canonical_attention(model).eval()
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    elif isinstance(inputs, list):
        inputs = tuple(inputs)
    start = time.perf_counter()
    try:
        result = trace_module(model, inputs)
    except Exception as exc:
        if raise_errors:
            raise
        return graphs_row(model_id, None, error=one_line(exc), seconds=time.perf_counter() - start)
    return graphs_row(model_id, content_hash(result.graph.nodes), result, result.device, "math",
                      seconds=time.perf_counter() - start)
