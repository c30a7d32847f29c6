"""Example inputs shared by every source: sizes, images, token ids, and the helpers that read a
config (``image_size``, ``num_channels``, ``vocab_size`` ...) and a forward signature.

transformers models get theirs from :mod:`narbuild.tracing.hf_inputs`; the other layouts the
ladder's ``alt-inputs`` step tries are in :mod:`narbuild.tracing.alt_inputs`. Sources with a
fixed input (timm, torchvision, pytorchcv, ...) build theirs with :func:`image_batch` or
:func:`vision_inputs`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import torch

SEQ_LEN = 32
AUDIO_SAMPLES = 16000
DEFAULT_IMAGE = 224
_SUBCONFIGS = ("text_config", "vision_config", "audio_config", "encoder", "decoder",
               "backbone_config", "encoder_config", "decoder_config", "speech_config",
               "vision_encoder_config", "text_encoder_config", "qformer_config")


def config_holders(config: Any) -> Iterator[Any]:
    """The config, then its sub-configs (text, vision, ...) that are configs or dicts."""
    for holder in (config, *(getattr(config, s, None) for s in _SUBCONFIGS)):
        if holder is not None and not isinstance(holder, (str, int, float)):
            yield holder


def cfg_get(config: Any, *names: str, default: Any = None) -> Any:
    """First attribute found on the config, then on its sub-configs (text, vision, ...)."""
    for holder in config_holders(config):
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


_SPECIAL_TOKEN_FIELDS = ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id",
                         "cls_token_id", "mask_token_id", "unk_token_id", "decoder_start_token_id")
IMAGE_TOKEN_FIELDS = ("image_token_id", "image_token_index")
_IMAGE_COUNT_FIELDS = ("image_seq_length", "num_image_tokens", "mm_tokens_per_image",
                       "image_seq_len", "num_query_tokens")


def _special_ids(config: Any) -> set[int]:
    ids: set[int] = set()
    for holder in (config, getattr(config, "text_config", None)):
        for name in dir(holder) if holder is not None and not isinstance(holder, dict) else ():
            if name.endswith(("_token_id", "_token_index")):
                value = getattr(holder, name, None)
                for v in value if isinstance(value, (list, tuple)) else [value]:
                    if isinstance(v, int):
                        ids.add(v)
    return ids


def tokens(config: Any, seq: int) -> torch.Tensor:
    """``seq`` ordinary token ids (fewer if the model has fewer positions): inside the
    vocabulary, none of the config's special ids."""
    positions = cfg_get(config, "max_position_embeddings", "n_positions")
    if isinstance(positions, int) and 0 < positions < seq:
        seq = positions  # e.g. OWL-ViT's text tower has 16
    vocab = int(cfg_get(config, "vocab_size", default=1000) or 1000)
    special = _special_ids(config)
    ids, candidate = [], min(4, max(vocab - 1, 0))
    while len(ids) < seq:
        if candidate not in special or len(special) >= vocab:
            ids.append(candidate)
        candidate = (candidate + 1) % max(vocab, 1)
    return torch.tensor([ids], dtype=torch.long, device="cpu")  # moved with the model later


def image_token_count(config: Any) -> int | None:
    """How many placeholder tokens one image takes in the text, from the config: an explicit
    count (``image_seq_length``, ``mm_tokens_per_image`` ...) or (image_size / patch_size)^2."""
    for name in _IMAGE_COUNT_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    vision = getattr(config, "vision_config", None)
    size, patch = getattr(vision, "image_size", None), getattr(vision, "patch_size", None)
    if isinstance(size, int) and isinstance(patch, int) and patch > 0:
        return (size // patch) ** 2
    return None


def image_token(config: Any) -> int | None:
    for name in IMAGE_TOKEN_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None


def with_image_tokens(config: Any, ids: torch.Tensor, count: int | None = None) -> torch.Tensor:
    """Text ids with one image's placeholder tokens after the first token (LLaVA-style models
    replace them with the image features)."""
    token, count = image_token(config), count or image_token_count(config)
    if token is None or count is None:
        return ids
    image = torch.full((1, count), token, dtype=torch.long, device=ids.device)
    return torch.cat([ids[:, :1], image, ids[:, 1:]], dim=1)


def nested(config: Any, name: str, depth: int = 3) -> Any:
    """``name`` on the config or on any sub-config (``sub_configs``), ``depth`` levels down."""
    value = getattr(config, name, None)
    if value is not None or depth == 0:
        return value
    for key in getattr(config, "sub_configs", None) or {}:
        value = nested(getattr(config, key, None), name, depth - 1)
        if value is not None:
            return value
    return None


def audio_time_axis(features: torch.Tensor, config: Any) -> int:
    """The frame axis of (batch, mel bins, frames) or (batch, frames, features) audio."""
    return 2 if features.shape[1] == cfg_get(config, "num_mel_bins") else 1


class NotApplicable(Exception):
    """This fallback step does not apply to this model (skip it, it is no failure)."""


def required(param: inspect.Parameter) -> bool:
    return param.default is inspect.Parameter.empty


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
