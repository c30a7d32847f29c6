"""file: a user's ``path/to/file.py:factory``, traced as the dataset's models are.

Not crawled: ``narbuild trace`` and ``narbuild search`` take such a spec directly. The factory
returns a ``torch.nn.Module``; an ``example_inputs()`` function beside it gives the inputs,
otherwise they are derived (a transformers model's from its config, else one RGB image).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from narbuild.errors import NarbuildError, one_line
from narbuild.sources.base import Built, Source

SOURCE = Source(
    name="file", title="a user's file.py:factory (traced or searched directly)", package=None,
    offline=True, license="the user's", family="the name hints over the file and factory")


def build(config: dict[str, Any], step: str) -> Built:
    """A ``file.py:factory`` (with its ``example_inputs()`` when defined); the tracer's device
    context is already entered."""
    _, model, inputs = load_factory(f"{config['path']}:{config['factory']}", device=None)
    return Built(model, tuple(inputs) if isinstance(inputs, list) else inputs)


def load_factory(spec: str, device: str | None = "cpu") -> tuple[str, Any, tuple | dict]:
    """Import ``file.py:factory`` and build it on ``device`` (``meta``: without weights, as the
    dataset is built; ``cpu``: random initialisers skipped); returns (model id, module, example
    inputs on that device)."""
    import torch

    from narbuild.tracing.devices import to_device

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
        with _context(device):
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
    return f"file:{path.stem}.{name}", model, to_device(inputs, device) if device else inputs


def _callables(mod) -> list[str]:
    return [k for k, v in vars(mod).items() if callable(v) and not k.startswith("_")][:8]


def infer_inputs(model: Any) -> tuple | dict:
    """Inputs for a user module: a transformers model's from its config, else one RGB image."""
    from narbuild.tracing.hf_inputs import transformers_inputs
    from narbuild.tracing.inputs import vision_inputs

    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "model_type"):
        return transformers_inputs(model, config)
    return vision_inputs(None)




def _context(device: str | None):
    import contextlib

    from narbuild.tracing.devices import cpu_context, meta_context

    if device is None:  # the caller's context
        return contextlib.nullcontext()
    return meta_context() if device == "meta" else cpu_context(device)
