"""Inputs of a transformers model, derived from its config and its forward signature.

Which tensors to pass comes from the names ``forward`` accepts, their sizes from the config
(``image_size``, ``num_mel_bins``, ``context_length`` ...), and arguments no rule knows from the
shapes the model's docstring documents (:func:`documented_inputs`). A few architectures need a
companion input beside the usual ones (the table of :mod:`narbuild.tracing.companions`).
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Any

import torch

from narbuild.tracing.companions import companion_inputs
from narbuild.tracing.inputs import (
    AUDIO_SAMPLES,
    SEQ_LEN,
    NotApplicable,
    cfg_get,
    forward_params,
    image_batch,
    image_hw,
    image_token,
    nested,
    required,
    tokens,
    with_image_tokens,
)


def patch_grid(config: Any) -> tuple[torch.Tensor, torch.Tensor, int] | None:
    """Qwen2-VL-style vision input: one image as flattened patches, its (t, h, w) patch grid,
    and the number of placeholder tokens it becomes after spatial merging."""
    vision = getattr(config, "vision_config", None) or config
    patch = cfg_get(vision, "patch_size", "spatial_patch_size")
    if not isinstance(patch, int) or patch <= 0:
        return None
    temporal = int(cfg_get(vision, "temporal_patch_size", default=1) or 1)
    merge = int(cfg_get(vision, "spatial_merge_size", "merge_size", default=1) or 1)
    channels = int(cfg_get(vision, "in_channels", "in_chans", "num_channels", default=3))
    side = 8 * merge
    patches = torch.randn(side * side, channels * temporal * patch * patch, requires_grad=True)
    grid = torch.tensor([[1, side, side]], device="cpu")  # read back as numbers: kept on the CPU
    return patches, grid, side * side // (merge * merge)


def _timm_input_size(config: Any) -> list[int] | None:
    """The input size timm registers for a wrapped timm vision tower (``TimmWrapperConfig``
    names only the architecture, e.g. ``vit_pe_core_large_patch14_336``)."""
    arch = nested(config, "architecture")
    if not isinstance(arch, str):
        return None
    import timm

    try:
        return list(timm.models.get_pretrained_cfg(arch).input_size)
    except Exception:  # noqa: BLE001 - not a registered timm architecture
        return None


def _native_resolution_patches(config: Any, channels: int) -> dict[str, torch.Tensor]:
    """One image as a sequence of flattened patches with its (rows, columns) grid."""
    patch = int(cfg_get(config, "patch_size", default=16))
    side = math.isqrt(int(cfg_get(config, "num_patches", default=256)))
    patches = torch.randn(1, side * side, channels * patch * patch, requires_grad=True)
    return {"pixel_values": patches,
            "pixel_attention_mask": torch.ones(1, side * side, dtype=torch.long),
            "spatial_shapes": torch.tensor([[side, side]], device="cpu")}


def _indexed_patches(config: Any, side: int = 16) -> torch.Tensor:
    """Pix2Struct's input: a ``side`` x ``side`` grid of flattened patches, each led by its
    (row, column) index."""
    width = int(cfg_get(config, "patch_embed_hidden_size", default=768))
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    index = torch.stack([rows.flatten(), cols.flatten()], dim=-1).float() + 1
    patches = torch.cat([index, torch.randn(side * side, width)], dim=-1)
    return patches.unsqueeze(0).requires_grad_(True)


def _audio_features(config: Any, seq: int) -> torch.Tensor:
    mel = cfg_get(config, "num_mel_bins")
    if mel and cfg_get(config, "max_source_positions"):
        frames = 2 * int(cfg_get(config, "max_source_positions"))
        return torch.randn(1, int(mel), frames, requires_grad=True)
    feat = cfg_get(config, "input_feat_per_channel", "feature_size", "num_mel_bins",
                   "input_dim", "feature_projection_input_dim", default=80)
    channels = cfg_get(config, "input_channels", default=1)
    return torch.randn(1, 4 * seq, int(feat) * int(channels), requires_grad=True)


TIME_SERIES_LEN = 512
"""Longest context given to a time-series model (TimesFM 2.5's default is 16,384 steps)."""


def time_series_inputs(params: dict[str, inspect.Parameter], config: Any) -> dict[str, Any]:
    """Past (and future) values of a forecaster, shaped by its config: ``context_length`` steps
    plus the largest lag (GluonTS-style models), ``num_input_channels`` / ``input_size`` series,
    ``num_time_features`` covariates. Sequence-typed arguments (TimesFM's predictor) get lists."""
    context = min(int(cfg_get(config, "context_length", default=32)), TIME_SERIES_LEN)
    lags = cfg_get(config, "lags_sequence")
    past = context + (max(lags) if lags else 0)
    horizon = int(cfg_get(config, "prediction_length", default=0) or 0)
    series = int(cfg_get(config, "num_input_channels", default=0) or 0)
    size = int(cfg_get(config, "input_size", default=1) or 1)
    features = int(cfg_get(config, "num_time_features", default=0) or 0)

    def values(steps: int) -> torch.Tensor:
        shape = (1, steps, series) if series else (1, steps) if size == 1 else (1, steps, size)
        return torch.randn(*shape, requires_grad=True)

    def is_sequence(name: str) -> bool:
        return "Sequence" in str(params[name].annotation)

    out: dict[str, Any] = {"past_values": values(past)}
    if is_sequence("past_values"):
        out["past_values"] = [out["past_values"][0]]
    for name in ("past_observed_mask", "observed_mask"):
        if name in params:
            out[name] = torch.ones(out["past_values"].shape)
    if "past_values_padding" in params:
        out["past_values_padding"] = torch.zeros(1, past)
    if "freq" in params:
        out["freq"] = [0] if is_sequence("freq") else torch.zeros(1, dtype=torch.long)
    if "past_time_features" in params:
        out["past_time_features"] = torch.randn(1, past, features)
    if "future_values" in params and horizon and "past_time_features" in params:
        out["future_values"] = values(horizon)  # encoder-decoder forecasters run the decoder
        out["future_time_features"] = torch.randn(1, horizon, features)
    return out


def transformers_inputs(model: torch.nn.Module, config: Any, text_only: bool = False,
                        seq: int = SEQ_LEN) -> dict[str, torch.Tensor]:
    """Keyword inputs for a transformers model, from its forward signature and config.

    No ``attention_mask`` is passed: every token is real, and transformers then builds the
    same masks on every device without looking at mask values.
    """
    params = forward_params(model)
    names = set(params)
    if text_only and "input_ids" not in names:
        raise NotApplicable("the model takes no text")
    if text_only and not names & {"pixel_values", "pixel_values_videos", "input_features",
                                  "input_values"}:
        raise NotApplicable("the model takes text only already")
    inputs: dict[str, Any] = {}
    channels = int(cfg_get(config, "num_channels", "in_channels", "in_chans", default=3))
    hw = image_hw(cfg_get(config, "image_size", "img_size", "input_size", "crop_size")
                  or _timm_input_size(config))
    ratios = getattr(config, "scaled_images_ratios", None)
    if ratios and isinstance(getattr(config, "patch_size", None), int):  # DepthPro's pyramid
        hw = (int(config.patch_size / min(ratios)),) * 2  # its smallest scale is one patch

    grid = patch_grid(config) if names & {"grid_thw", "image_grid_thw"} else None
    if grid is not None and "grid_thw" in names:  # a vision tower fed with patches
        inputs["hidden_states" if "hidden_states" in names else "pixel_values"] = grid[0]
        inputs["grid_thw"] = grid[1]
    elif grid is not None and "pixel_values" in names and not text_only:
        inputs["pixel_values"], inputs["image_grid_thw"] = grid[0], grid[1]
    elif "spatial_shapes" in names and not text_only:  # SigLIP 2: patches, any aspect ratio
        inputs.update(_native_resolution_patches(config, channels))
    elif "flattened_patches" in names and not text_only:  # Pix2Struct
        inputs["flattened_patches"] = _indexed_patches(config)
    elif "pixel_values" in names and not text_only:
        frames = cfg_get(config, "num_frames", "frames_per_clip")
        if frames and "image" not in type(model).__name__.lower():  # a video model's clip
            inputs["pixel_values"] = torch.randn(1, int(frames), channels, *hw, requires_grad=True)
        else:
            inputs["pixel_values"] = image_batch(channels, *hw)
    if "pixel_values_videos" in names and not text_only and "pixel_values" not in inputs:
        frames = int(cfg_get(config, "num_frames", "frames_per_clip", default=8))
        inputs["pixel_values_videos"] = torch.randn(1, frames, channels, *hw, requires_grad=True)
    if "past_values" in names and not text_only:
        inputs.update(time_series_inputs(params, config))
    if "input_values" in names and not text_only:
        channels = getattr(config, "audio_channels", None)  # codecs take (batch, channels, time)
        shape = (1, channels, AUDIO_SAMPLES) if isinstance(channels, int) else (1, AUDIO_SAMPLES)
        inputs["input_values"] = torch.randn(*shape, requires_grad=True)
    if "input_features" in names and not text_only:
        inputs["input_features"] = _audio_features(config, seq)
    text_needed = "input_ids" in names and (
        not inputs or text_only or required(params["input_ids"]) or _is_multimodal_text(names))
    if text_needed:
        ids = tokens(config, seq)
        if "image_grid_thw" in inputs:
            ids = with_image_tokens(config, ids, count=grid[2])
            if "mm_token_type_ids" in names:  # 1 marks an image token (M-RoPE reads it back)
                inputs["mm_token_type_ids"] = (ids == image_token(config)).long().cpu()
        elif "pixel_values" in inputs and inputs["pixel_values"].dim() == 4:
            ids = with_image_tokens(config, ids)
        if type(model).__name__.endswith("ForMultipleChoice"):
            ids = ids.unsqueeze(1).expand(1, 2, ids.shape[-1]).contiguous()  # two choices
        inputs["input_ids"] = ids
    if not text_only:
        inputs.update(companion_inputs(params, config, inputs, seq))
    classifies = type(model).__name__.endswith("ForSequenceClassification")
    eos = getattr(config, "eos_token_id", None)
    if classifies and getattr(config, "is_encoder_decoder", False) and isinstance(eos, int) \
            and "input_ids" in inputs:
        # BART-style classifiers pool the decoder state at the <eos> of input_ids: one <eos> per
        # row, and decoder inputs as long as the encoder's
        inputs["input_ids"][..., -1] = eos
        if "decoder_input_ids" in names:
            inputs["decoder_input_ids"] = tokens(config, inputs["input_ids"].shape[-1])
    elif "decoder_input_ids" in names and getattr(config, "is_encoder_decoder", False):
        inputs["decoder_input_ids"] = tokens(config, seq // 2 or 1)
    if not text_only:
        inputs.update(documented_inputs(model, params, config, inputs, seq))
    if "use_cache" in names:
        inputs["use_cache"] = False
    if not inputs:
        raise ValueError(
            f"cannot infer inputs: forward takes {sorted(names)[:8]} and none is a known modality")
    return inputs


_ARG_DOC = r"^\s*{name} \((`[^`]*`)?[^)]*?of shape `([\[(][^`]*[\])])`"
_ONE = {"batch_size", "batch", "num_images", "max_num_images", "num_images_or_videos"}
_LENGTH = {"sequence_length", "seq_len", "target_sequence_length", "episode_length", "frames",
           "num_frames", "number_of_previous_accepted_tokens", "max_patches"}
_WIDTH = {"hidden_size", "dim", "embed_dim", "d_model"}


def documented_inputs(model: torch.nn.Module, params: dict[str, inspect.Parameter], config: Any,
                      inputs: dict[str, Any], seq: int) -> dict[str, Any]:
    """Tensors for the forward's required arguments that no modality gave (every documented
    one when none did), shaped as the forward's docstring documents them: ``latents (...) of
    shape (batch_size, hidden_size, frames)``. Sizes come from the config (``hidden_size``,
    ``config.block_size``, ``state_dim``), one batch item, ``seq`` steps; a patch mask
    (``bool_masked_pos``) covers the model's patches. Long tensors are token ids for ``*_ids``
    and ones otherwise (counts, sizes), boolean ones are all True but a masked-patch selection,
    which masks every other patch; float ones require grad. A lone required tensor argument
    without a documented shape gets what the model's first layer takes
    (:func:`_first_layer_input`). Nothing is given unless every required argument is."""
    doc = inspect.getdoc(type(model).forward) or ""
    wanted = [n for n, p in params.items() if n not in inputs and p.kind not in (
        p.VAR_POSITIONAL, p.VAR_KEYWORD) and (required(p) or not inputs)]
    out: dict[str, Any] = {}
    for name in wanted:
        found = re.search(_ARG_DOC.format(name=re.escape(name)), doc, re.MULTILINE)
        if found is None and required(params[name]) and _tensor_typed(params[name]) and \
                sum(required(params[n]) for n in wanted) == 1:
            first = _first_layer_input(model, config, seq)
            if first is not None:
                out[name] = first
            continue
        if found is None or (not required(params[name]) and "mask" in name):
            continue
        shape = _documented_shape(model, config, name, found.group(2), seq)
        kind = found.group(1) or ""
        if shape is None:
            continue
        if "Long" in kind or "Int" in kind:
            out[name] = (tokens(config, math.prod(shape)).reshape(shape) if name.endswith("_ids")
                         else torch.ones(shape, dtype=torch.long))
        elif "Bool" in kind:
            mask = torch.ones(shape, dtype=torch.bool)
            if "masked_pos" in name:
                mask[..., 1::2] = False
            out[name] = mask
        else:
            out[name] = torch.randn(shape, requires_grad=True)
    if any(required(params[n]) and n not in out for n in wanted):
        return {}  # still not runnable: the model's own error says what it takes
    return out


def _tensor_typed(param: inspect.Parameter) -> bool:
    """Whether an argument is annotated as a tensor, or not annotated."""
    return param.annotation is inspect.Parameter.empty or "Tensor" in str(param.annotation)


def _first_layer_input(model: torch.nn.Module, config: Any, seq: int) -> torch.Tensor | None:
    """A tensor the model's first layer takes: a one-second waveform for a convolution over one
    or two audio channels, ``seq`` steps of a wider 1-D convolution's channels (a decoder from
    latents; VibeVoice's acoustic tokenizer: its encoder from the waveform, its decoder from
    latents), else ``seq`` vectors of the config's ``d_model`` (Perceiver's inputs) or of the
    first linear layer's width."""
    first = next((m for m in model.modules()
                  if isinstance(m, (torch.nn.Conv1d, torch.nn.Linear))), None)
    if isinstance(first, torch.nn.Conv1d):
        steps = AUDIO_SAMPLES if first.in_channels <= 2 else seq
        return torch.randn(1, first.in_channels, steps, requires_grad=True)
    width = getattr(config, "d_model", None)
    width = width if isinstance(width, int) else getattr(first, "in_features", None)
    return torch.randn(1, seq, width, requires_grad=True) if isinstance(width, int) else None


def _documented_shape(model: torch.nn.Module, config: Any, name: str, text: str,
                      seq: int) -> list[int] | None:
    """A documented shape (``(batch_size, hidden_size, frames)``) in sizes; None when a dimension
    cannot be resolved from the config."""
    dims = []
    for part in re.sub(r"\s*\([<>=][^()]*\)", "", text.strip()[1:-1]).split(","):
        part = part.strip()
        if not part:
            continue
        if part.isdigit():
            dims.append(int(part))
        elif part in _ONE:
            dims.append(1)
        elif part == "sequence_length" and "masked_pos" in name:
            patches = next((m.num_patches for m in model.modules()
                            if isinstance(getattr(m, "num_patches", None), int)), None)
            if patches is None:
                return None
            dims.append(patches)
        elif part in _LENGTH:
            dims.append(seq)
        else:
            value = _documented_size(config, part)
            if not isinstance(value, int) or value <= 0:
                return None
            dims.append(value)
    return dims or None


def _documented_size(config: Any, expression: str) -> Any:
    """A size named in a documented shape: a config field (``state_dim``, ``config.block_size``,
    ``dim * len(config.target_layer_ids)``), ``dim`` and ``hidden_size`` being the hidden size."""
    names = set(re.findall(r"(?<![.\w])([A-Za-z_]\w*)", expression)) - {"config", "len"}
    scope: dict[str, Any] = {"config": config, "len": len}
    for word in names:
        value = cfg_get(config, "hidden_size", "d_model") if word in _WIDTH else cfg_get(config, word)
        if value is None:
            return None
        scope[word] = value
    try:
        return eval(expression, {"__builtins__": {}}, scope)  # the docstring: names, len, *
    except Exception:  # noqa: BLE001 - not a size we can compute
        return None


def _is_multimodal_text(names: set[str]) -> bool:
    """Vision- and audio-language models take text with the image or sound (CLIP-like,
    captioning, audio LMs)."""
    return "input_ids" in names and bool(
        names & {"pixel_values", "pixel_values_videos", "input_features", "input_values"})
