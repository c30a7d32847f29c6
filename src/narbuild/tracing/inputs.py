"""Example inputs derived from a model's config and forward signature, per modality.

Nothing is hard-coded per model: sizes come from the config (``image_size``, ``num_channels``,
``vocab_size``, ``num_mel_bins`` ...), and which tensors to pass comes from the names the
model's ``forward`` accepts.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Iterator
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


def _tokens(config: Any, seq: int) -> torch.Tensor:
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


def _image_token(config: Any) -> int | None:
    for name in IMAGE_TOKEN_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None


def _with_image_tokens(config: Any, ids: torch.Tensor, count: int | None = None) -> torch.Tensor:
    """Text ids with one image's placeholder tokens after the first token (LLaVA-style models
    replace them with the image features)."""
    token, count = _image_token(config), count or image_token_count(config)
    if token is None or count is None:
        return ids
    image = torch.full((1, count), token, dtype=torch.long, device=ids.device)
    return torch.cat([ids[:, :1], image, ids[:, 1:]], dim=1)


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


def _nested(config: Any, name: str, depth: int = 3) -> Any:
    """``name`` on the config or on any sub-config (``sub_configs``), ``depth`` levels down."""
    value = getattr(config, name, None)
    if value is not None or depth == 0:
        return value
    for key in getattr(config, "sub_configs", None) or {}:
        value = _nested(getattr(config, key, None), name, depth - 1)
        if value is not None:
            return value
    return None


def _timm_input_size(config: Any) -> list[int] | None:
    """The input size timm registers for a wrapped timm vision tower (``TimmWrapperConfig``
    names only the architecture, e.g. ``vit_pe_core_large_patch14_336``)."""
    arch = _nested(config, "architecture")
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
        not inputs or text_only or _required(params["input_ids"]) or _is_multimodal_text(names))
    if text_needed:
        ids = _tokens(config, seq)
        if "image_grid_thw" in inputs:
            ids = _with_image_tokens(config, ids, count=grid[2])
            if "mm_token_type_ids" in names:  # 1 marks an image token (M-RoPE reads it back)
                inputs["mm_token_type_ids"] = (ids == _image_token(config)).long().cpu()
        elif "pixel_values" in inputs and inputs["pixel_values"].dim() == 4:
            ids = _with_image_tokens(config, ids)
        if type(model).__name__.endswith("ForMultipleChoice"):
            ids = ids.unsqueeze(1).expand(1, 2, ids.shape[-1]).contiguous()  # two choices
        inputs["input_ids"] = ids
    if not text_only:
        inputs.update(_companion_inputs(params, config, inputs, seq))
    classifies = type(model).__name__.endswith("ForSequenceClassification")
    eos = getattr(config, "eos_token_id", None)
    if classifies and getattr(config, "is_encoder_decoder", False) and isinstance(eos, int) \
            and "input_ids" in inputs:
        # BART-style classifiers pool the decoder state at the <eos> of input_ids: one <eos> per
        # row, and decoder inputs as long as the encoder's
        inputs["input_ids"][..., -1] = eos
        if "decoder_input_ids" in names:
            inputs["decoder_input_ids"] = _tokens(config, inputs["input_ids"].shape[-1])
    elif "decoder_input_ids" in names and getattr(config, "is_encoder_decoder", False):
        inputs["decoder_input_ids"] = _tokens(config, seq // 2 or 1)
    if not text_only:
        inputs.update(documented_inputs(model, params, config, inputs, seq))
    if "use_cache" in names:
        inputs["use_cache"] = False
    if not inputs:
        raise ValueError(
            f"cannot infer inputs: forward takes {sorted(names)[:8]} and none is a known modality")
    return inputs


def _companion_inputs(params: dict[str, inspect.Parameter], config: Any,
                      inputs: dict[str, Any], seq: int) -> dict[str, Any]:
    """Inputs that come with an image or text in some architectures: an image pair (keypoint
    matchers), the Q-Former's instruction (InstructBLIP), word boxes (BROS, UDOP), region
    features (LXMERT), global-attention tokens (Longformer), a task prompt (OneFormer), the
    image-attention mask of IDEFICS, a required mask over audio frames (Qwen3-ASR)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_KEYPOINT_MATCHING_MAPPING_NAMES

    out: dict[str, Any] = {}
    image = inputs.get("pixel_values")
    if image is not None and getattr(config, "model_type", None) in \
            MODEL_FOR_KEYPOINT_MATCHING_MAPPING_NAMES:
        out["pixel_values"] = torch.stack([image.detach()[0]] * 2)[None].requires_grad_()
    if "qformer_input_ids" in params:
        out["qformer_input_ids"] = _tokens(getattr(config, "qformer_config", config), seq)
    if "bbox" in params:  # one (x0, y0, x1, y1) box per token
        corner = torch.rand(1, seq, 2) * 0.5
        boxes = torch.cat([corner, corner + 0.25], dim=-1)
        if cfg_get(config, "max_2d_position_embeddings"):  # LayoutLM-style: integer 0..1000
            boxes = (boxes * 1000).long()
        out["bbox"] = boxes
    if "visual_feats" in params and "visual_feat_dim" in dir(config):
        boxes = 8
        out["visual_feats"] = torch.randn(1, boxes, config.visual_feat_dim, requires_grad=True)
        out["visual_pos"] = torch.rand(1, boxes, config.visual_pos_dim)
    count = cfg_get(config, "latent_query_num")
    if "image_embeds_position_mask" in params and image is not None and "input_ids" in inputs \
            and isinstance(count, int):  # Kosmos-2: the image's latents replace these positions
        ids = inputs["input_ids"]
        out["input_ids"] = torch.cat([ids[:, :1], _tokens(config, count), ids[:, 1:]], dim=1)
        mask = torch.zeros(out["input_ids"].shape, dtype=torch.long, device="cpu")
        mask[:, 1:1 + count] = 1
        out["image_embeds_position_mask"] = mask
    if {"image_attention_mask", "perceiver_embeddings"} <= set(params) and image is not None \
            and "input_ids" in inputs:
        # IDEFICS: which images each text token may attend to (one image, every token); FLAVA's
        # mask of the same name is over image patches and is left out
        out["image_attention_mask"] = torch.ones(*inputs["input_ids"].shape, 1, dtype=torch.long)
    if "global_attention_mask" in params and "input_ids" in inputs:  # Longformer: <s> is global
        mask = torch.zeros(inputs["input_ids"].shape, dtype=torch.long, device="cpu")
        mask[..., 0] = 1
        out["global_attention_mask"] = mask
    if "task_inputs" in params and _required(params["task_inputs"]):
        out["task_inputs"] = _tokens(config, int(getattr(config, "task_seq_len", seq)))
    features = inputs.get("input_features")
    if "input_features_mask" in params and _required(params["input_features_mask"]) \
            and features is not None and features.dim() == 3:  # every audio frame is real
        frames = features.shape[_audio_time_axis(features, config)]
        out["input_features_mask"] = torch.ones(1, frames, dtype=torch.long, device="cpu")
    return out


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
        p.VAR_POSITIONAL, p.VAR_KEYWORD) and (_required(p) or not inputs)]
    out: dict[str, Any] = {}
    for name in wanted:
        found = re.search(_ARG_DOC.format(name=re.escape(name)), doc, re.MULTILINE)
        if found is None and _required(params[name]) and _tensor_typed(params[name]) and \
                sum(_required(params[n]) for n in wanted) == 1:
            first = _first_layer_input(model, config, seq)
            if first is not None:
                out[name] = first
            continue
        if found is None or (not _required(params[name]) and "mask" in name):
            continue
        shape = _documented_shape(model, config, name, found.group(2), seq)
        kind = found.group(1) or ""
        if shape is None:
            continue
        if "Long" in kind or "Int" in kind:
            out[name] = (_tokens(config, math.prod(shape)).reshape(shape) if name.endswith("_ids")
                         else torch.ones(shape, dtype=torch.long))
        elif "Bool" in kind:
            mask = torch.ones(shape, dtype=torch.bool)
            if "masked_pos" in name:
                mask[..., 1::2] = False
            out[name] = mask
        else:
            out[name] = torch.randn(shape, requires_grad=True)
    if any(_required(params[n]) and n not in out for n in wanted):
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


def _audio_time_axis(features: torch.Tensor, config: Any) -> int:
    """The frame axis of (batch, mel bins, frames) or (batch, frames, features) audio."""
    return 2 if features.shape[1] == cfg_get(config, "num_mel_bins") else 1


def _relaid(inputs: dict[str, Any], key: str, dim: int,
            relayout: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, Any] | None:
    """``inputs`` with ``key`` (a ``dim``-D tensor) laid out anew; None when there is none."""
    tensor = inputs.get(key)
    if tensor is None or tensor.dim() != dim:
        return None
    return {**inputs, key: relayout(tensor.detach()).contiguous().requires_grad_()}


def _waveform_with_channel(inputs: dict[str, Any], config: Any) -> dict[str, Any] | None:
    """A waveform as (batch, 1, time): codecs (DAC) that take a channel axis."""
    return _relaid(inputs, "input_values", 2, lambda wave: wave[:, None])


def _values_as_spectrogram(inputs: dict[str, Any], config: Any) -> dict[str, Any] | None:
    """``input_values`` as (batch, frames, mel bins): spectrogram transformers (AST)."""
    mel = cfg_get(config, "num_mel_bins")
    if "input_values" not in inputs or not isinstance(mel, int):
        return None
    frames = int(cfg_get(config, "max_length", default=4 * SEQ_LEN))
    spectrogram = torch.randn(1, frames, mel, requires_grad=True)
    return {**inputs, "input_values": spectrogram.to(inputs["input_values"].device)}


def _features_transposed(inputs: dict[str, Any], config: Any) -> dict[str, Any] | None:
    """Audio features as (batch, bins, frames) instead of (batch, frames, bins), or back."""
    return _relaid(inputs, "input_features", 3, lambda features: features.transpose(1, 2))


def _features_with_channel(inputs: dict[str, Any], config: Any) -> dict[str, Any] | None:
    """Audio features as a one-channel image (batch, 1, frames, bins): CLAP's audio tower."""
    return _relaid(inputs, "input_features", 3, lambda features: features[:, None])


def _images_per_sample(inputs: dict[str, Any], config: Any) -> dict[str, Any] | None:
    """Images as (batch, images, channels, H, W): models that take several images per text."""
    return _relaid(inputs, "pixel_values", 4, lambda image: image[:, None])


def _codebooks_in_batch(inputs: dict[str, Any], config: Any) -> dict[str, Any] | None:
    """Audio-token ids as (batch x codebooks, seq): MusicGen's decoder, one row per codebook."""
    books = _codebooks(config)
    key = "decoder_input_ids" if "decoder_input_ids" in inputs else "input_ids"
    ids = inputs.get(key)
    if not isinstance(books, int) or ids is None or ids.dim() != 2:
        return None
    return {**inputs, key: ids.expand(books, -1).contiguous()}


def _codebooks_per_token(inputs: dict[str, Any], config: Any) -> list[dict[str, Any]] | None:
    """Token ids as (batch, seq, streams), one id per codebook, with or without a text stream
    beside the audio codebooks (Kyutai's speech-to-text: 1 + 32 streams); the decoder's ids for
    an encoder-decoder (Dia: text in, audio codebooks out)."""
    books = _codebooks(config)
    key = "decoder_input_ids" if "decoder_input_ids" in inputs else "input_ids"
    ids = inputs.get(key)
    if not isinstance(books, int) or ids is None or ids.dim() != 2:
        return None
    return [{**inputs, key: ids[..., None].expand(*ids.shape, k).contiguous()}
            for k in (books, books + 1)]


def _codebooks(config: Any) -> int | None:
    """How many audio codebooks the model reads in parallel: ``num_codebooks``, or the
    channels of its audio decoder (Dia's ``decoder_config.num_channels``)."""
    return cfg_get(config, "num_codebooks") or _read_any(
        getattr(config, "decoder_config", None), "num_channels")


def _longer_audio(inputs: dict[str, Any], config: Any) -> list[dict[str, Any]] | None:
    """Audio features 2x and 4x as long: models that add one audio embedding to each text
    position need as many audio frames as the text has tokens (Voxtral Realtime)."""
    features = inputs.get("input_features")
    if features is None or features.dim() != 3 or "input_ids" not in inputs:
        return None
    time_axis = _audio_time_axis(features, config)
    return [{**inputs, "input_features": torch.cat([features.detach()] * k, dim=time_axis)
             .requires_grad_()} for k in (2, 4)]


def _resized_images(inputs: dict[str, Any], hw: tuple[int, int]) -> dict[str, Any] | None:
    """``inputs`` with the image (batch, channels, H, W) at ``hw``; None when it is at it."""
    image = inputs.get("pixel_values")
    if image is None or image.dim() != 4 or tuple(image.shape[-2:]) == hw:
        return None
    resized = torch.randn(*image.shape[:2], *hw, dtype=image.dtype, requires_grad=True)
    return {**inputs, "pixel_values": resized.to(image.device)}


def _images_at_nested_size(inputs: dict[str, Any], config: Any) -> dict[str, Any] | None:
    """Images at the size a deeper sub-config names, where the config and its direct
    sub-configs name none (SAM 2: ``vision_config.backbone_config.image_size``, 1024)."""
    if cfg_get(config, "image_size", "img_size", "input_size", "crop_size") is not None:
        return None
    for name in ("image_size", "img_size"):
        size = _nested(config, name)
        if size is not None:
            return _resized_images(inputs, image_hw(size))
    return None


def _images_fitting_windows(inputs: dict[str, Any], config: Any) -> dict[str, Any] | None:
    """Images whose patch grid splits into the backbone's ``num_windows`` windows a side: the
    size rounded up to a multiple of patch size x windows (RF-DETR: 518 -> 560)."""
    windows, patch = _nested(config, "num_windows"), _nested(config, "patch_size")
    image = inputs.get("pixel_values")
    if not isinstance(windows, int) or not isinstance(patch, int) or windows < 2 or image is None:
        return None
    step = windows * patch
    return _resized_images(inputs, tuple(-(-int(s) // step) * step for s in image.shape[-2:]))


def _text_with_its_companions(inputs: dict[str, Any], config: Any) -> list[dict[str, Any]] | None:
    """Text with what some heads read although it is optional: decoder ids (BLIP's question
    answering generates its answer from them) or an attention mask over every token (BLIP-2's
    image-text retrieval slices it)."""
    ids = inputs.get("input_ids")
    if ids is None or ids.dim() != 2:
        return None
    out = []
    if "decoder_input_ids" not in inputs:
        out.append({**inputs, "decoder_input_ids": _tokens(config, SEQ_LEN // 2).to(ids.device)})
    if "attention_mask" not in inputs:
        out.append({**inputs, "attention_mask": torch.ones(ids.shape, dtype=torch.long,
                                                           device=ids.device)})
    return out


def _one_audio_input(inputs: dict[str, Any], config: Any) -> list[dict[str, Any]] | None:
    """The waveform alone, or the features alone, for models that take either but refuse both
    (a speech encoder-decoder takes what its encoder takes)."""
    if "input_values" not in inputs or "input_features" not in inputs:
        return None
    return [{k: v for k, v in inputs.items() if k != drop}
            for drop in ("input_features", "input_values")]


_FEATURE_WIDTHS = ("input_feat_per_channel", "feature_size", "num_mel_bins", "input_dim",
                   "feature_projection_input_dim")


def _features_at_nested_width(inputs: dict[str, Any], config: Any) -> list[dict[str, Any]] | None:
    """Audio features as wide as a deeper sub-config's feature width, where the config and its
    direct sub-configs name none (NeuCodec's semantic encoder, a Wav2Vec2-BERT taking 160-wide
    features), alone and with the waveform given a channel axis (codecs that take both)."""
    features = inputs.get("input_features")
    if features is None or features.dim() != 3 or cfg_get(config, *_FEATURE_WIDTHS) is not None:
        return None
    width = next((w for n in _FEATURE_WIDTHS if isinstance(w := _nested(config, n), int)), None)
    if width is None or width == features.shape[-1]:
        return None
    wide = torch.randn(*features.shape[:-1], width, dtype=features.dtype, requires_grad=True)
    changed = {**inputs, "input_features": wide.to(features.device)}
    with_channel = _waveform_with_channel(changed, config)
    return [changed, *([with_channel] if with_channel else [])]


def _patches_as_images(inputs: dict[str, Any], config: Any) -> dict[str, Any] | None:
    """Flattened image patches (patches, channels x p x p) as small images (patches, channels,
    p, p), for towers that embed each patch with a convolution (Kimi-K2.5's MoonViT)."""
    patches, patch = inputs.get("pixel_values"), cfg_get(config, "patch_size")
    if patches is None or patches.dim() != 2 or not isinstance(patch, int) \
            or patches.shape[-1] % (patch * patch):
        return None
    return _relaid(inputs, "pixel_values", 2,
                   lambda flat: flat.reshape(flat.shape[0], -1, patch, patch))


def _audio_with_frame_mask(inputs: dict[str, Any], config: Any) -> list[dict[str, Any]] | None:
    """Audio features with their mask over frames, every frame real, under the names audio
    models take it by (``input_features_mask``: Audio Flamingo 3; ``feature_attention_mask``:
    Qwen-Omni), for models that read the mask although it is optional."""
    features = inputs.get("input_features")
    if features is None or features.dim() != 3:
        return None
    frames = features.shape[_audio_time_axis(features, config)]
    mask = torch.ones(1, frames, dtype=torch.long)
    return [{**inputs, name: mask} for name in ("input_features_mask", "feature_attention_mask")
            if name not in inputs]


ALTERNATIVES = (_images_per_sample, _codebooks_in_batch, _waveform_with_channel,
                _values_as_spectrogram, _features_transposed, _features_with_channel,
                _codebooks_per_token, _longer_audio, _images_at_nested_size,
                _images_fitting_windows, _patches_as_images, _audio_with_frame_mask,
                _features_at_nested_width, _text_with_its_companions, _one_audio_input)
"""Other layouts of the same modality, tried in order when the inferred ones do not fit; each
gives one layout, several, or None where it does not apply. Later ones come after earlier ones,
so a model an earlier layout fits keeps it."""


def _features_at_input_width(inputs: dict[str, Any], config: Any,
                             model: torch.nn.Module | None = None) -> dict[str, Any] | None:
    """Audio features as wide as the model's first linear layer takes, for encoders that widen
    their frames before it (Granite Speech 5 stacks delta-expanded mel frames: 4 x 80)."""
    features = inputs.get("input_features")
    first = next((m for m in model.modules() if isinstance(m, torch.nn.Linear)), None) \
        if model is not None else None
    if features is None or features.dim() != 3 or first is None \
            or first.in_features in features.shape[1:]:
        return None
    wide = torch.randn(*features.shape[:-1], first.in_features, requires_grad=True)
    return {**inputs, "input_features": wide.to(dtype=features.dtype, device=features.device)}


def _patches_at_input_width(inputs: dict[str, Any], config: Any,
                            model: torch.nn.Module | None = None) -> dict[str, Any] | None:
    """Flattened image patches (patches, width) as wide as the model's first linear layer
    takes, on the same patch grid: towers whose config leaves out a factor of the patch width
    (MUSE's vision tower embeds two frames of each 14 x 14 patch: 1176, not 588)."""
    patches = inputs.get("pixel_values")
    first = next((m for m in model.modules() if isinstance(m, torch.nn.Linear)), None) \
        if model is not None else None
    if patches is None or patches.dim() != 2 or first is None \
            or first.in_features == patches.shape[-1]:
        return None
    wide = torch.randn(patches.shape[0], first.in_features, requires_grad=True)
    return {**inputs, "pixel_values": wide.to(dtype=patches.dtype, device=patches.device)}


def _read_any(config: Any, name: str) -> Any:
    """``name`` of a config or a config dict; None for neither."""
    return getattr(config, name, None) if config is not None and not isinstance(config, dict) \
        else (config or {}).get(name)


WITH_MODEL = (_features_at_input_width, _patches_at_input_width)
"""Alternatives that look at the built model, not only at its config."""


def alternative_inputs(inputs: tuple | dict, config: Any,
                       model: torch.nn.Module | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, inputs) for each alternative layout that applies to these inputs."""
    if not isinstance(inputs, dict):
        return
    for alternative in (*ALTERNATIVES, *WITH_MODEL):
        changed = alternative(inputs, config, model) if alternative in WITH_MODEL \
            else alternative(inputs, config)
        for layout in [changed] if isinstance(changed, dict) else changed or ():
            yield alternative.__name__.lstrip("_"), layout


class NotApplicable(Exception):
    """This fallback step does not apply to this model (skip it, it is no failure)."""


def _required(param: inspect.Parameter) -> bool:
    return param.default is inspect.Parameter.empty


def _is_multimodal_text(names: set[str]) -> bool:
    """Vision- and audio-language models take text with the image or sound (CLIP-like,
    captioning, audio LMs)."""
    return "input_ids" in names and bool(
        names & {"pixel_values", "pixel_values_videos", "input_features", "input_values"})


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
