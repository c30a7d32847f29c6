"""holocron: the model builders of François-Guillaume Fernandez's Holocron (``holocron.models``).

One row per public builder of ``holocron.models.classification``, ``.segmentation`` and
``.detection`` that takes ``pretrained`` (59 in pylocron 0.3.0): its own implementations of
ResNet/ResNet-D/ResNeXt, Res2Net, SKNet, PyConv, TridentNet, Darknet 19/24/53, CSPDarknet,
RepVGG, RepViT, MobileOne, ReXNet and ConvNeXt; U-Net, U-Net++, U-Net 3+ and dynamic U-Nets
over torchvision and ReXNet encoders; YOLO v1, v2 and v4. Each is built with ``pretrained=False``
and, where it has one, ``pretrained_backbone=False`` (nothing is downloaded). The input is one
RGB image: 224 x 224 for the classifiers, 256 x 256 for the segmenters and 416 x 416 for the
detectors (their published input size). The family is the builder's module (``resnet``,
``rexnet``, ``unetpp``, ``yolov4``; ``labels.ALIASES`` merges ``darknetv3`` with pytorchcv's
Darknet-53 and the like).

The package is published on PyPI as ``pylocron`` (``holocron`` there is another project).
Install: pylocron 0.3.0 declares ``huggingface-hub<2`` (used only to fetch weights), while
transformers here needs 2.x, so ``make setup`` installs it with ``pip install --no-deps``; the
``holocron`` extra holds what its models import beyond the core.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Iterator
from functools import cache
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.sources.base import Built, Source

SOURCE = Source(
    name="holocron", title="Holocron model builders (holocron.models, pylocron on PyPI)",
    package="holocron", distribution="pylocron", offline=True, license="Apache-2.0",
    extra="holocron",
    family="the builder's module (holocron.models.classification.rexnet -> rexnet)",
    no_deps=("pylocron==0.3.0",))

TASKS = {"classification": ("image-classification", 224),
         "segmentation": ("image-segmentation", 256),
         "detection": ("object-detection", 416)}
"""Builder package -> (task, input size)."""


@cache
def _builders() -> dict[str, tuple[str, str]]:
    """``{builder name: (package, module)}`` for every public builder that takes ``pretrained``."""
    import warnings

    with warnings.catch_warnings():  # Holocron's activations are torch.jit.script'ed
        warnings.simplefilter("ignore", FutureWarning)
        from holocron import models

    out: dict[str, tuple[str, str]] = {}
    for package in TASKS:
        for name, fn in vars(getattr(models, package)).items():
            if (inspect.isfunction(fn) and not name.startswith("_")
                    and "pretrained" in inspect.signature(fn).parameters):
                out[name] = (package, fn.__module__)
    return out


def names() -> list[str]:
    return list(_builders())


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per builder (all, or ``names``)."""
    version = importlib.metadata.version(SOURCE.dist)
    builders = _builders()
    for name in names if names is not None else builders:
        package, module = builders[name]
        task, size = TASKS[package]
        yield manifest_row(
            "holocron", name, {"package": package, "builder": name, "image_size": size},
            task=task, library="holocron", module=module.rsplit(".", 1)[-1],
            metadata={"pylocron": version, "module": module})


def build(config: dict[str, Any], step: str) -> Built:
    """The builder's model without weights (nor a pretrained backbone), and one image."""
    from narbuild.tracing import inputs as make

    fn = SOURCE.attribute(f"holocron.models.{config['package']}", config["builder"], "builder")
    kwargs: dict[str, Any] = {"pretrained": False}
    if "pretrained_backbone" in inspect.signature(fn).parameters:
        kwargs["pretrained_backbone"] = False
    size = config["image_size"]
    return Built(fn(**kwargs), (make.image_batch(3, size, size),))
