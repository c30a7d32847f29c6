"""Build a manifest row's model without weights, with example inputs, on a given device (the
device contexts are in :mod:`narbuild.tracing.devices`)."""

from __future__ import annotations

from typing import Any

import torch

from narbuild import sources
from narbuild.sources.base import Built
from narbuild.tracing.core import cast_inputs
from narbuild.tracing.devices import (
    cpu_context,
    default_dtype,
    meta_context,
    params_on_meta,
    share_zero_weights,
    to_device,
)


def build(source: str, config: dict[str, Any], device: str = "meta",
          dtype: torch.dtype = torch.float32, step: str = "default") -> Built:
    """Build the model of a manifest row (its ``source`` and parsed ``config``).

    ``device="meta"`` builds without memory for weights. ``step="meta-init"`` runs the
    constructor on the CPU (for builders that compute sizes with tensor ops, e.g. torchvision's
    RegNet) while every parameter and buffer is placed on the meta device.
    ``step="meta-constants"`` does the same but keeps buffers real on the CPU, so a model that
    reads a buffer's values (``if self.probs[i] > 0``) runs on meta; trace it inside
    :func:`~narbuild.tracing.devices.literals_on_host`. ``step="shared-weights"`` builds a real CPU model whose every
    weight is one zero broadcast to its shape (:func:`~narbuild.tracing.devices.share_zero_weights`): no memory for
    weights, real values everywhere else. On the CPU, random
    initialisers are replaced by their expected value (:func:`~narbuild.tracing.devices.cheap_init`): the values of weights
    do not shape the graph, and a real-tensor build then costs little more than its allocation.
    """
    builder = sources.require(source).build
    if step == "meta-init":
        device, context = "meta", params_on_meta()
    elif step == "shared-weights":
        device, context = "cpu", params_on_meta(buffers=False)
    elif step == "meta-constants":
        device, context = "meta", params_on_meta(buffers=False)
    elif device == "meta":
        context = meta_context()
    else:
        context = cpu_context(device)
    with context, default_dtype(dtype if device != "meta" else torch.float32):
        built = builder(config, step)  # real tensors are made in their final dtype: no fp32 peak
    if step == "shared-weights":
        share_zero_weights(built.model)
    built.model.eval()
    if dtype != torch.float32:
        built.model.to(dtype)
        built.inputs = cast_inputs(built.inputs, dtype)
    if device == "meta":
        built.inputs = to_device(built.inputs, "meta")
    return built
