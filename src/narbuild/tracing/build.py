"""Build a manifest row's model without weights, with example inputs, on a given device."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Any

import torch

from narbuild.errors import NarbuildError
from narbuild.tracing import inputs as make


@dataclass
class Built:
    """A model ready to trace, and how it was made."""

    model: torch.nn.Module
    inputs: tuple | dict
    attention: str = "math"


def build(source: str, config: dict[str, Any], device: str = "meta",
          dtype: torch.dtype = torch.float32, step: str = "default") -> Built:
    """Build the model of a manifest row (its ``source`` and parsed ``config``)."""
    builder = _BUILDERS.get(source)
    if builder is None:
        raise NarbuildError(f"cannot build models of source {source!r}",
                            "this source's models are listed only")
    with torch.device(device):
        built = builder(config, step)
        built.model.eval()
        if dtype != torch.float32:
            built.model.to(dtype)
            built.inputs = _cast_inputs(built.inputs, dtype)
    return built


def _cast_inputs(inputs, dtype):
    def cast(v):
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            return v.detach().to(dtype).requires_grad_(v.requires_grad)
        return v
    if isinstance(inputs, dict):
        return {k: cast(v) for k, v in inputs.items()}
    return tuple(cast(v) for v in inputs)


def _timm(config: dict[str, Any], step: str) -> Built:
    import timm

    cfg = config.get("pretrained_cfg", {})
    model = timm.create_model(config["architecture"], pretrained=False,
                              num_classes=cfg.get("num_classes", 1000))
    size = cfg.get("input_size")
    if step == "small-input" and size:
        size = [size[0], *[max(s // 2, 32) for s in size[1:]]]
    return Built(model, make.vision_inputs(size))


def _torchvision(config: dict[str, Any], step: str) -> Built:
    from torchvision.models import get_model, get_model_builder

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


def _transformers(config: dict[str, Any], step: str) -> Built:
    import transformers

    cls = getattr(transformers, config["class"], None)
    if cls is None:
        raise NarbuildError(f"transformers has no class {config['class']}",
                            "upgrade transformers or re-crawl")
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    hf_config = CONFIG_MAPPING[config["model_type"]].from_dict(config["config"])
    if step == "small":
        _shrink(hf_config)
    model = cls._from_config(hf_config, attn_implementation="eager")
    return Built(model, make.transformers_inputs(model, hf_config, text_only=step == "text-only"),
                 attention="eager")


def _shrink(hf_config: Any) -> None:
    """Fewer layers for models too large to run on real tensors (depth only; width kept)."""
    for holder in (hf_config, *(getattr(hf_config, s, None) for s in make._SUBCONFIGS)):
        if holder is None or isinstance(holder, (str, int, float, dict)):
            continue
        for key in ("num_hidden_layers", "num_layers", "encoder_layers", "decoder_layers"):
            if isinstance(getattr(holder, key, None), int) and getattr(holder, key) > 2:
                setattr(holder, key, 2)


def _hf_hub(config: dict[str, Any], step: str) -> Built:
    cfg = config.get("config", {})
    if config.get("library") == "timm" or "architecture" in cfg:
        return _timm({"architecture": cfg["architecture"],
                      "pretrained_cfg": cfg.get("pretrained_cfg", {})}, step)
    model_type = cfg.get("model_type")
    archs = cfg.get("architectures") or []
    if not model_type or not archs:
        raise NarbuildError("config.json has no model_type/architectures",
                            "only transformers and timm Hub models are built")
    return _transformers({"model_type": model_type, "class": archs[0], "config": cfg}, step)


_BUILDERS = {"timm": _timm, "torchvision": _torchvision, "transformers": _transformers,
             "hf-hub": _hf_hub}


def parse_config(text: str) -> dict[str, Any]:
    return json.loads(text)
