"""Example inputs derived from a model's config and forward signature, per modality.

Nothing is hard-coded per model: sizes come from the config (``image_size``, ``num_channels``,
``vocab_size``, ``num_mel_bins`` ...), and which tensors to pass comes from the names the
model's ``forward`` accepts.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

SEQ_LEN = 32
AUDIO_SAMPLES = 16000
DEFAULT_IMAGE = 224
_SUBCONFIGS = ("text_config", "vision_config", "audio_config", "encoder", "decoder",
               "backbone_config", "encoder_config", "decoder_config", "speech_config",
               "vision_encoder_config", "text_encoder_config", "qformer_config")


def cfg_get(config: Any, *names: str, default: Any = None) -> Any:
    """First attribute found on the config, then on its sub-configs (text, vision, ...)."""
    for holder in (config, *(getattr(config, s, None) for s in _SUBCONFIGS)):
        if holder is None or isinstance(holder, (str, int, float)):
            continue
        for name in names:
            value = holder.get(name) if isinstance(holder, dict) else getattr(holder, name, None)
            if value is not None:
                return value
    return default


def image_hw(size: Any, default: int = DEFAULT_IMAGE) -> tuple[int, int]:
    """(H, W) from an int, a [H, W] / [C, H, W] list or a {'height', 'width'} dict."""
    if isinstance(size, dict):
        size = (size.get("height") or size.get("shortest_edge"),
                size.get("width") or size.get("shortest_edge"))
    if isinstance(size, (list, tuple)):
        size = [s for s in size if s][-2:]
        if len(size) == 2:
            return int(size[0]), int(size[1])
        size = size[0] if size else None
    if isinstance(size, (int, float)) and size > 0:
        return int(size), int(size)
    return default, default


def image_batch(channels: int, height: int, width: int, dtype=torch.float32) -> torch.Tensor:
    """One image that requires grad, so the graph reaches back to the input."""
    return torch.randn(1, channels, height, width, dtype=dtype, requires_grad=True)


def vision_inputs(input_size: list[int] | None) -> tuple[torch.Tensor, ...]:
    """Inputs of an image classifier from a (C, H, W) size."""
    c, h, w = input_size if input_size else (3, DEFAULT_IMAGE, DEFAULT_IMAGE)
    return (image_batch(c, h, w),)


def forward_params(model: torch.nn.Module) -> dict[str, inspect.Parameter]:
    try:
        return dict(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return {}


def _tokens(config: Any, seq: int) -> torch.Tensor:
    vocab = int(cfg_get(config, "vocab_size", default=1000) or 1000)
    return torch.arange(seq, dtype=torch.long).remainder(max(vocab - 1, 1)).add(1).unsqueeze(0)


def _audio_features(config: Any, seq: int) -> torch.Tensor:
    mel = cfg_get(config, "num_mel_bins")
    if mel and cfg_get(config, "max_source_positions"):
        frames = 2 * int(cfg_get(config, "max_source_positions"))
        return torch.randn(1, int(mel), frames, requires_grad=True)
    feat = cfg_get(config, "input_feat_per_channel", "feature_size", "num_mel_bins",
                   "input_dim", default=80)
    channels = cfg_get(config, "input_channels", default=1)
    return torch.randn(1, 4 * seq, int(feat) * int(channels), requires_grad=True)


def transformers_inputs(model: torch.nn.Module, config: Any, text_only: bool = False,
                        seq: int = SEQ_LEN) -> dict[str, torch.Tensor]:
    """Keyword inputs for a transformers model, from its forward signature and config."""
    params = forward_params(model)
    names = set(params)
    if text_only and "input_ids" not in names:
        raise NotApplicable("the model takes no text")
    inputs: dict[str, Any] = {}
    channels = int(cfg_get(config, "num_channels", "in_channels", "in_chans", default=3))
    hw = image_hw(cfg_get(config, "image_size", "img_size", "input_size", "crop_size"))

    if "pixel_values" in names and not text_only:
        frames = cfg_get(config, "num_frames", "frames_per_clip")
        if frames and "video" in type(model).__name__.lower():
            inputs["pixel_values"] = torch.randn(1, int(frames), channels, *hw, requires_grad=True)
        else:
            inputs["pixel_values"] = image_batch(channels, *hw)
    if "input_values" in names:
        inputs["input_values"] = torch.randn(1, AUDIO_SAMPLES, requires_grad=True)
    if "input_features" in names:
        inputs["input_features"] = _audio_features(config, seq)
    text_needed = "input_ids" in names and (
        not inputs or text_only or _required(params["input_ids"]) or _is_multimodal_text(names))
    if text_needed:
        inputs["input_ids"] = _tokens(config, seq)
        if "attention_mask" in names:
            inputs["attention_mask"] = torch.ones(1, seq, dtype=torch.long)
    if "decoder_input_ids" in names and getattr(config, "is_encoder_decoder", False):
        inputs["decoder_input_ids"] = _tokens(config, seq // 2 or 1)
    if "use_cache" in names:
        inputs["use_cache"] = False
    if not inputs:
        raise ValueError(
            f"cannot infer inputs: forward takes {sorted(names)[:8]} and none is a known modality")
    return inputs


class NotApplicable(Exception):
    """This fallback step does not apply to this model (skip it, it is no failure)."""


def _required(param: inspect.Parameter) -> bool:
    return param.default is inspect.Parameter.empty


def _is_multimodal_text(names: set[str]) -> bool:
    """Vision-language models take text with the image (CLIP-like, captioning)."""
    return "pixel_values" in names and "input_ids" in names


def describe(inputs: tuple | dict) -> dict[str, dict[str, Any]]:
    """Input name -> {shape, dtype} for the graphs table."""
    items = inputs.items() if isinstance(inputs, dict) else enumerate(inputs)
    out = {}
    for key, value in items:
        if isinstance(value, torch.Tensor):
            out[str(key)] = {"shape": list(value.shape), "dtype": str(value.dtype).removeprefix("torch.")}
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], torch.Tensor):
            out[str(key)] = {"shape": [list(v.shape) for v in value], "dtype": "list"}
        else:
            out[str(key)] = {"value": repr(value)[:40]}
    return out
