"""The source registry: every place models come from, one module each.

A source module (``narbuild/sources/<name>.py``) declares:

* ``SOURCE``: a :class:`~narbuild.sources.base.Source` (id prefix, offline or online, package,
  licence, where its family labels come from);
* ``iter_rows(names=None, **options)``: its manifest rows (all, or the given names);
* ``names()``: every name it lists (offline sources; for lookups and suggestions);
* ``build(config, step)``: the model of one row's config, without weights, with example
  inputs (a :class:`~narbuild.sources.base.Built`); the tracer supplies the device context.

The crawl, the lookup of one id, the tracer's builder dispatch and the card read this registry;
adding a source is one module here, its line in :data:`MODULES`, and its tests.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import cache
from types import ModuleType
from typing import Any

from narbuild.errors import NarbuildError, SourceUnavailableError
from narbuild.sources.base import Built, Source, unknown_id

__all__ = [
    "MODULES",
    "Built",
    "Source",
    "all_sources",
    "available",
    "get",
    "lookup",
    "offline_sources",
    "require",
]

MODULES: dict[str, str] = {
    "timm": "timm",
    "torchvision": "torchvision",
    "transformers": "transformers",
    "pytorchcv": "pytorchcv",
    "smp": "smp",
    "ultralytics": "ultralytics",
    "open_clip": "open_clip",
    "diffusers": "diffusers",
    "monai": "monai",
    "pyg": "pyg",
    "keras": "keras",
    "neuralforecast": "neuralforecast",
    "litgpt": "litgpt",
    "torchtune": "torchtune",
    "mmpretrain": "mmpretrain",
    "torchaudio": "torchaudio",
    "doctr": "doctr",
    "torchtitan": "torchtitan",
    "spandrel": "spandrel",
    "braindecode": "braindecode",
    "holocron": "holocron",
    "tsai": "tsai",
    "nni": "nni",
    "hf-hub": "hf_hub",
    "torch-hub": "torch_hub",
    "file": "file",
}
"""Source name (the id prefix) -> its module under ``narbuild.sources``."""


@cache
def get(name: str) -> ModuleType:
    """The module of a source; a clear error for an unknown name."""
    module = MODULES.get(name)
    if module is None:
        raise NarbuildError(f"unknown source {name!r}",
                            f"choose from {', '.join(s for s in MODULES if s != 'file')}")
    return importlib.import_module(f"narbuild.sources.{module}")


def all_sources() -> list[Source]:
    """Every registered source, in registry order."""
    return [get(name).SOURCE for name in MODULES]


def offline_sources() -> tuple[str, ...]:
    """The sources a plain ``narbuild crawl`` lists: the offline ones."""
    return tuple(s.name for s in all_sources() if s.offline and s.name != "file")


def available(name: str) -> bool:
    """Whether a source's package is installed (checked without importing it)."""
    package = get(name).SOURCE.package
    return package is None or importlib.util.find_spec(package) is not None


def require(name: str) -> ModuleType:
    """The module of a source whose package is installed; otherwise a one-line error that
    says how to install it."""
    module = get(name)
    if not available(name):
        raise SourceUnavailableError(
            f"source {name!r} needs the package {module.SOURCE.package!r}, which is not installed",
            module.SOURCE.install_hint())
    return module


def lookup(model_id: str) -> dict[str, Any]:
    """The manifest row of one registry model id (``<source>:<name>``), without crawling the
    whole source; unknown ids get the closest known ones as a hint."""
    prefix, sep, name = model_id.partition(":")
    if not sep or not name:
        raise NarbuildError(f"{model_id!r} is not a model id",
                            "use <source>:<name>, e.g. timm:resnet50 or transformers:bert")
    by_prefix = {s.prefix: s.name for s in all_sources() if s.name != "file"}
    if prefix not in by_prefix:
        raise NarbuildError(f"unknown source {prefix!r} in {model_id!r}",
                            f"model ids start with {', '.join(p + ':' for p in by_prefix)}")
    source = by_prefix[prefix]
    module = require(source)
    if hasattr(module, "lookup"):
        return module.lookup(name)
    known = names_of(source)
    if name not in known:
        raise unknown_id(model_id, [f"{source}:{n}" for n in known],
                         f"list them with `narbuild crawl -s {source}`")
    return next(iter(module.iter_rows([name])))


def names_of(source: str) -> list[str]:
    """Every name an offline source lists."""
    return list(require(source).names())
