"""Small, documented adjustments that let transformers models run on the meta device.

transformers decides some attention-mask shortcuts by looking at tensor *values*
(``padding_mask.all()``, "are these position ids packed sequences?"). On the meta device
there are no values, so those checks raise ``Tensor.item() cannot be called on meta tensors``.
transformers already skips the checks while a graph is being traced (``is_tracing``: dynamo,
fx, fake tensors); a meta tensor is the same situation, so :func:`patch_masking_utils` makes
``masking_utils.is_tracing`` answer True for meta tensors too.

This does not make the graph depend on the device: the checks only decide whether a mask that
does not require grad is built, and narbuild passes no ``attention_mask`` (so no padding check
runs on any device), while a causal model under eager attention always builds its causal mask.
``tests/test_trace.py::test_meta_and_cpu_graphs_are_identical`` holds this.

``PreTrainedModel.warn_if_padding_and_no_attention_mask`` (a one-time warning that looks for
pad ids in the input) returns at once for meta ids.

Vision-language models check that the number of image placeholder tokens equals the number of
image features (``torch_compilable_check``), which needs values too; transformers' own switch
``TRANSFORMERS_DISABLE_TORCH_CHECK=1`` turns these checks off. narbuild still passes the right
number of placeholder tokens (:func:`narbuild.tracing.inputs.image_token_count`), so the check
would pass; it only cannot be evaluated on meta.
"""

from __future__ import annotations

import functools
import os

import torch

_PATCHED = False


def patch_masking_utils() -> None:
    """Treat meta tensors as traced in ``transformers.masking_utils`` (idempotent)."""
    global _PATCHED
    if _PATCHED:
        return
    from transformers import masking_utils

    original = masking_utils.is_tracing

    @functools.wraps(original)
    def is_tracing(tensor=None) -> bool:
        if isinstance(tensor, torch.Tensor) and tensor.device.type == "meta":
            return True
        return original(tensor)

    masking_utils.is_tracing = is_tracing

    from transformers.modeling_utils import PreTrainedModel

    warn = PreTrainedModel.warn_if_padding_and_no_attention_mask

    @functools.wraps(warn)
    def warn_if_padding(self, input_ids, attention_mask):
        if isinstance(input_ids, torch.Tensor) and input_ids.device.type == "meta":
            return None  # a warning about padding, which meta ids cannot show
        return warn(self, input_ids, attention_mask)

    PreTrainedModel.warn_if_padding_and_no_attention_mask = warn_if_padding
    os.environ["TRANSFORMERS_DISABLE_TORCH_CHECK"] = "1"
    _PATCHED = True
