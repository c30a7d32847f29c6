"""Trace one model named by a spec: a model id, a config.json path, or ``file.py:factory``."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from narbuild.crawler.base import content_hash, manifest_row
from narbuild.errors import NarbuildError
from narbuild.tracing.build import cpu_context, meta_context, to_device
from narbuild.tracing.core import trace_module
from narbuild.tracing.inputs import transformers_inputs, vision_inputs
from narbuild.tracing.ladder import graphs_row, one_line, trace_manifest_row


def spec_row(spec: str) -> dict[str, Any] | None:
    """The manifest row a spec names, or None for a ``file.py:factory`` spec."""
    path, _, factory = spec.rpartition(":")
    if spec.endswith(".py") or (path.endswith(".py") and factory.isidentifier()):
        return None
    if spec.endswith(".json") or Path(spec).is_file():
        return _config_json_row(Path(spec))
    from narbuild.crawler.lookup import lookup

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
        from narbuild.tracing.build import check_local_architecture

        check_local_architecture(cfg["architecture"])
    return manifest_row("hf-hub", path.stem if path.stem != "config" else path.parent.name or "config",
                        {"repo_id": None, "library": None, "config": cfg}, id_prefix="file",
                        model_type=cfg.get("model_type"), architectures=cfg.get("architectures"))


def load_factory(spec: str, device: str = "cpu") -> tuple[str, torch.nn.Module, tuple | dict]:
    """Import ``file.py:factory`` and build it on ``device`` (``meta``: without weights, as the
    dataset is built; ``cpu``: random initialisers skipped); returns (model id, module, example
    inputs on that device)."""
    file, _, name = spec.rpartition(":") if not spec.endswith(".py") else (spec, "", "")
    path = Path(file)
    if not path.is_file():
        raise NarbuildError(f"no such file: {path}", "pass path/to/file.py:factory")
    if not name:
        raise NarbuildError(f"{spec} names no factory", "pass path/to/file.py:factory")
    module_spec = importlib.util.spec_from_file_location(f"narbuild_user_{path.stem}", path)
    mod = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        module_spec.loader.exec_module(mod)
        factory = getattr(mod, name, None)
        if not callable(factory):
            raise NarbuildError(f"{path} defines no function {name!r}",
                                f"functions there: {', '.join(_callables(mod)) or 'none'}")
        with meta_context() if device == "meta" else cpu_context(device):
            model = factory()
            if not isinstance(model, torch.nn.Module):
                raise NarbuildError(f"{spec} returned {type(model).__name__}, not an nn.Module",
                                    "the factory must return a torch.nn.Module")
            example = getattr(mod, "example_inputs", None)
            inputs = example() if callable(example) else infer_inputs(model)
    except NarbuildError:
        raise
    except Exception as exc:
        raise NarbuildError(f"{spec} raised {one_line(exc)}", "fix the factory and retry") from exc
    finally:
        sys.path.remove(str(path.parent.resolve()))
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    return f"file:{path.stem}.{name}", model, to_device(inputs, device)


def _callables(mod) -> list[str]:
    return [k for k, v in vars(mod).items() if callable(v) and not k.startswith("_")][:8]


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


def infer_inputs(model: torch.nn.Module) -> tuple | dict:
    """Inputs for a user module: a transformers model's from its config, else one RGB image."""
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "model_type"):
        return transformers_inputs(model, config)
    return vision_inputs(None)


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
