"""The companion-inputs table: a forward argument some architectures take beside an image or
text, mapped to the function that provides it.

:func:`companion_inputs` walks :data:`COMPANIONS` in order; a provider runs when the model's
``forward`` accepts its argument and returns the inputs to add (or nothing). To support a new
companion input, write its provider here, named for what it gives and the model that needs it,
and add its line to the table.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from narbuild.tracing.inputs import audio_time_axis, cfg_get, required, tokens

Params = dict[str, inspect.Parameter]
Provider = Callable[[Params, Any, dict[str, Any], int], dict[str, Any] | None]


def _image_pair(params: Params, config: Any, inputs: dict[str, Any], seq: int) -> dict | None:
    """Keypoint matchers (SuperGlue, LightGlue ...) compare two images: the image twice."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_KEYPOINT_MATCHING_MAPPING_NAMES

    image = inputs.get("pixel_values")
    if image is None or getattr(config, "model_type", None) not in \
            MODEL_FOR_KEYPOINT_MATCHING_MAPPING_NAMES:
        return None
    return {"pixel_values": torch.stack([image.detach()[0]] * 2)[None].requires_grad_()}


def _qformer_prompt(params: Params, config: Any, inputs: dict[str, Any], seq: int) -> dict:
    """InstructBLIP: the Q-Former's instruction, tokens of its own config."""
    return {"qformer_input_ids": tokens(getattr(config, "qformer_config", config), seq)}


def _word_boxes(params: Params, config: Any, inputs: dict[str, Any], seq: int) -> dict:
    """BROS, UDOP, LayoutLM: one (x0, y0, x1, y1) box per token (LayoutLM-style configs with
    ``max_2d_position_embeddings`` take integers 0..1000)."""
    corner = torch.rand(1, seq, 2) * 0.5
    boxes = torch.cat([corner, corner + 0.25], dim=-1)
    if cfg_get(config, "max_2d_position_embeddings"):
        boxes = (boxes * 1000).long()
    return {"bbox": boxes}


def _region_features(params: Params, config: Any, inputs: dict[str, Any], seq: int) -> dict | None:
    """LXMERT: features and positions of 8 detected regions."""
    if "visual_feat_dim" not in dir(config):
        return None
    boxes = 8
    return {"visual_feats": torch.randn(1, boxes, config.visual_feat_dim, requires_grad=True),
            "visual_pos": torch.rand(1, boxes, config.visual_pos_dim)}


def _image_latent_positions(params: Params, config: Any, inputs: dict[str, Any],
                            seq: int) -> dict | None:
    """Kosmos-2: the image's latents replace these positions of the text (inserted after <s>)."""
    count = cfg_get(config, "latent_query_num")
    if inputs.get("pixel_values") is None or "input_ids" not in inputs \
            or not isinstance(count, int):
        return None
    ids = inputs["input_ids"]
    ids = torch.cat([ids[:, :1], tokens(config, count), ids[:, 1:]], dim=1)
    mask = torch.zeros(ids.shape, dtype=torch.long, device="cpu")
    mask[:, 1:1 + count] = 1
    return {"input_ids": ids, "image_embeds_position_mask": mask}


def _image_attention(params: Params, config: Any, inputs: dict[str, Any], seq: int) -> dict | None:
    """IDEFICS: which images each text token may attend to (one image, every token). FLAVA's
    mask of the same name is over image patches (it takes no ``perceiver_embeddings``) and is
    left out."""
    if "perceiver_embeddings" not in params or inputs.get("pixel_values") is None \
            or "input_ids" not in inputs:
        return None
    return {"image_attention_mask": torch.ones(*inputs["input_ids"].shape, 1, dtype=torch.long)}


def _global_first_token(params: Params, config: Any, inputs: dict[str, Any],
                        seq: int) -> dict | None:
    """Longformer: <s> attends globally."""
    if "input_ids" not in inputs:
        return None
    mask = torch.zeros(inputs["input_ids"].shape, dtype=torch.long, device="cpu")
    mask[..., 0] = 1
    return {"global_attention_mask": mask}


def _task_prompt(params: Params, config: Any, inputs: dict[str, Any], seq: int) -> dict | None:
    """OneFormer: its required task prompt, ``task_seq_len`` tokens."""
    if not required(params["task_inputs"]):
        return None
    return {"task_inputs": tokens(config, int(getattr(config, "task_seq_len", seq)))}


def _audio_frame_mask(params: Params, config: Any, inputs: dict[str, Any],
                      seq: int) -> dict | None:
    """Qwen3-ASR: a required mask over the audio frames; every frame is real."""
    features = inputs.get("input_features")
    if not required(params["input_features_mask"]) or features is None or features.dim() != 3:
        return None
    frames = features.shape[audio_time_axis(features, config)]
    return {"input_features_mask": torch.ones(1, frames, dtype=torch.long, device="cpu")}


COMPANIONS: dict[str, Provider] = {
    "pixel_values": _image_pair,
    "qformer_input_ids": _qformer_prompt,
    "bbox": _word_boxes,
    "visual_feats": _region_features,
    "image_embeds_position_mask": _image_latent_positions,
    "image_attention_mask": _image_attention,
    "global_attention_mask": _global_first_token,
    "task_inputs": _task_prompt,
    "input_features_mask": _audio_frame_mask,
}
"""Forward argument -> its provider, in the order they run (a later one may replace an
earlier one's tensor: Kosmos-2 lengthens ``input_ids``)."""


def companion_inputs(params: Params, config: Any, inputs: dict[str, Any],
                     seq: int) -> dict[str, Any]:
    """The companion inputs a model's ``forward`` accepts, given its usual ``inputs``."""
    out: dict[str, Any] = {}
    for argument, provide in COMPANIONS.items():
        if argument in params:
            out.update(provide(params, config, inputs, seq) or {})
    return out
