"""What a source declares (:class:`Source`) and what its builder returns (:class:`Built`).

Importing this module imports neither torch nor any source's package: the crawl, the card and
``narbuild crawl --help`` read the registry without them.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from narbuild.errors import NarbuildError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Source:
    """One place models come from.

    Attributes:
        name: the id prefix and ``--source`` name (``pytorchcv`` -> ``pytorchcv:resnet18``).
        title: what it is, in a few words (shown by ``narbuild crawl --list``).
        package: the import name of the package that must be installed; None for none.
        extra: the ``pip install narbuild[EXTRA]`` that installs it, when it is optional.
        offline: its listing needs no network (crawled by default).
        license: the package's licence (SPDX id); the dataset holds derived graphs only.
        family: where the fine label (family) comes from, in words, for the card.
        text_steps: the ladder's text-only and text-model steps apply (transformers configs).
        distribution: the pip distribution, when its name is not the package's.
        id_prefix: the model-id prefix, when it is not the name (``hf-hub`` rows are ``hf:``).
        install: the install command, when neither the extra nor ``no_deps`` says it.
        no_deps: the pinned packages that ``make setup`` installs with ``pip install
            --no-deps`` beside the extra (their declared pins conflict with this stack).
    """

    name: str
    title: str
    package: str | None
    offline: bool
    license: str
    family: str
    extra: str | None = None
    text_steps: bool = False
    distribution: str | None = None
    id_prefix: str | None = None
    install: str | None = None
    no_deps: tuple[str, ...] = ()

    @property
    def prefix(self) -> str:
        """What model ids of this source start with, before the colon."""
        return self.id_prefix or self.name

    @property
    def dist(self) -> str | None:
        """The pip distribution that provides the package."""
        return self.distribution or self.package

    def install_hint(self) -> str:
        if self.install:
            return self.install
        if self.no_deps:
            return (f"pip install 'narbuild[{self.extra}]' && pip install --no-deps "
                    f"{' '.join(self.no_deps)} (or `make setup`)")
        if self.extra:
            return f"pip install 'narbuild[{self.extra}]' (or `make setup`)"
        return f"pip install {self.package}"

    def package_dir(self) -> Path:
        """The installed package's folder, found without importing it (listings that read the
        package's files stay light); a one-line error when it is not installed."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise NarbuildError(f"the {self.package} package is not installed",
                                self.install_hint())
        return Path(next(iter(spec.submodule_search_locations)))

    def attribute(self, module: str, name: str, what: str) -> Any:
        """``module.name`` (a class or builder a manifest row names); a one-line error when
        the installed package no longer has it."""
        import importlib

        value = getattr(importlib.import_module(module), name, None)
        if value is None:
            raise NarbuildError(f"{self.name} has no {what} {name!r}",
                                f"upgrade {self.dist} or re-crawl")
        return value


def assigned(tree: ast.Module, name: str) -> ast.expr | None:
    """The value of a module-level ``name = ...`` in a parsed file (read, not imported)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return node.value
    return None


@dataclass
class Built:
    """A model ready to trace, and how it was made."""

    model: torch.nn.Module
    inputs: tuple | dict
    attention: str = "math"


def unknown_id(model_id: str, known: Iterable[str], hint: str) -> NarbuildError:
    """The error for an id a source does not have, suggesting the closest known ids."""
    close = difflib.get_close_matches(model_id, list(known), n=3, cutoff=0.6)
    return NarbuildError(f"unknown model id {model_id!r}",
                         f"did you mean {', '.join(close)}?" if close else hint)


def kwargs_of(config: dict[str, Any], key: str = "kwargs") -> dict[str, Any]:
    """The constructor keyword arguments a manifest config carries (a copy)."""
    value = config.get(key) or {}
    if not isinstance(value, dict):
        raise NarbuildError(f"the config's {key!r} is {type(value).__name__}, not a mapping",
                            "re-crawl the model")
    return dict(value)
