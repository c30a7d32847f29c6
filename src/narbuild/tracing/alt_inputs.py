"""Other layouts of the same inputs, tried by the ladder's ``alt-inputs`` step when the first
layout failed on a shape: a waveform with a channel axis, audio features transposed, images at
a sub-config's size, text with decoder ids, ... (:data:`ALTERNATIVES`, each a function of the
inputs and the config; :data:`WITH_MODEL`, also of the model).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from narbuild.tracing.inputs import SEQ_LEN, audio_time_axis, cfg_get, image_hw, nested, tokens


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
    time_axis = audio_time_axis(features, config)
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
        size = nested(config, name)
        if size is not None:
            return _resized_images(inputs, image_hw(size))
    return None


def _images_fitting_windows(inputs: dict[str, Any], config: Any) -> dict[str, Any] | None:
    """Images whose patch grid splits into the backbone's ``num_windows`` windows a side: the
    size rounded up to a multiple of patch size x windows (RF-DETR: 518 -> 560)."""
    windows, patch = nested(config, "num_windows"), nested(config, "patch_size")
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
        out.append({**inputs, "decoder_input_ids": tokens(config, SEQ_LEN // 2).to(ids.device)})
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
    width = next((w for n in _FEATURE_WIDTHS if isinstance(w := nested(config, n), int)), None)
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
    frames = features.shape[audio_time_axis(features, config)]
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
