"""torchvision: every model in ``torchvision.models.list_models()``, with its task and the
published parameter and GFLOPS figures of its default weights (an oracle for tracing)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.sources.base import Built, Source

SOURCE = Source(
    name="torchvision", title="torchvision.models (list_models)", package="torchvision",
    offline=True, license="BSD-3-Clause",
    family="the builder's module (detection.faster_rcnn -> faster_rcnn; video models 3-D)")

# torchvision.models sub-package -> task.
_TASKS = {
    "detection": "object-detection",
    "segmentation": "image-segmentation",
    "video": "video-classification",
    "optical_flow": "optical-flow",
    "quantization": "quantized-image-classification",
}


def task_of(builder_module: str) -> str:
    """Task from a builder's module, e.g. 'torchvision.models.detection.ssd' -> detection."""
    parts = builder_module.split(".")
    sub = parts[2] if len(parts) > 3 else ""
    return _TASKS.get(sub, "image-classification")


def _weights_facts(name: str) -> dict[str, Any]:
    """Input size and published figures of the default weights, when the model has weights."""
    from torchvision.models import get_model_weights

    try:
        weights = get_model_weights(name).DEFAULT
    except (KeyError, ValueError, AttributeError):
        return {}
    meta = weights.meta
    facts: dict[str, Any] = {"weights": str(weights)}
    for key in ("num_params", "_ops", "min_size", "min_temporal_size", "_file_size"):
        if key in meta:
            facts[key] = meta[key]
    if "categories" in meta and meta["categories"] is not None:
        facts["num_classes"] = len(meta["categories"])
    transforms = getattr(weights.transforms, "keywords", {}) or {}
    for key in ("crop_size", "resize_size"):
        if key in transforms:
            facts[key] = transforms[key]
    return facts


def names() -> list[str]:
    from torchvision.models import list_models

    return list_models()


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Yield one manifest row per torchvision model builder (all, or the given ``names``)."""
    from torchvision.models import get_model_builder, list_models

    for name in names if names is not None else list_models():
        module = get_model_builder(name).__module__
        facts = _weights_facts(name)
        config: dict[str, Any] = {"builder": name}
        if "num_classes" in facts:
            config["num_classes"] = facts["num_classes"]
        size = facts.get("crop_size") or facts.get("resize_size")  # segmentation: resize only
        if size:
            config["image_size"] = size
        if task_of(module) == "video-classification":
            config["num_frames"] = max(16, facts.get("min_temporal_size", 16))
        params = inspect.signature(get_model_builder(name)).parameters
        kwargs = {}
        if "image_size" in params or ("vision_transformer" in module and "min_size" in facts):
            kwargs["image_size"] = facts["min_size"][0]
        if "aux_loss" in params and facts:
            kwargs["aux_loss"] = True  # as the published weights build it
        if kwargs:
            config["builder_kwargs"] = kwargs
        yield manifest_row(
            "torchvision", name, config,
            task=task_of(module), library="torchvision",
            module=module.removeprefix("torchvision.models."),
            metadata={"reference": facts} if facts else {},
        )



def build(config: dict[str, Any], step: str) -> Built:
    import torch
    from torchvision.models import get_model, get_model_builder

    from narbuild.tracing import inputs as make

    name = config["builder"]
    module = get_model_builder(name).__module__
    kwargs: dict[str, Any] = {"weights": None}
    if "weights_backbone" in inspect.signature(get_model_builder(name)).parameters:
        kwargs["weights_backbone"] = None  # never download a backbone
    if "num_classes" in config:
        kwargs["num_classes"] = config["num_classes"]
    if ".quantization." in module:
        kwargs["quantize"] = False
    model = get_model(name, **kwargs, **config.get("builder_kwargs", {}))
    size = config.get("image_size") or make.DEFAULT_IMAGE
    h, w = make.image_hw(size)
    if ".video." in module:
        frames = config.get("num_frames", 16)
        return Built(model, (torch.randn(1, 3, frames, h, w, requires_grad=True),))
    if ".optical_flow." in module:
        return Built(model, (make.image_batch(3, 128, 128), make.image_batch(3, 128, 128)))
    if ".detection." in module:
        return Built(model, ([make.image_batch(3, h, w)[0]],))
    return Built(model, (make.image_batch(3, h, w),))
