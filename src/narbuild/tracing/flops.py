"""FLOP counting on meta tensors with ``FlopCounterMode``, plus the kernels it misses.

Convention: 2 FLOPs per multiply-accumulate, as FlopCounterMode counts (torchvision's published
"GFLOPS" are MACs: resnet50 4.09 = 8.18e9 / 2). Only matmul, convolution and attention kernels
are counted.
"""

from __future__ import annotations

from math import prod

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

aten = torch.ops.aten


def grouped_mm_flops(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """``aten._grouped_mm`` (mixture-of-experts layers): 2 x output elements x inner size."""
    if len(a_shape) == 2 and len(b_shape) == 2:  # groups split the inner dimension
        return 2 * a_shape[0] * b_shape[1] * a_shape[1]
    return 2 * prod(out_shape) * a_shape[-1]


def cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """CPU's fused ``_scaled_dot_product_flash_attention_for_cpu``: same as math attention."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


EXTRA_FORMULAS = {
    aten._grouped_mm: grouped_mm_flops,
    aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa_flops,
}


def flop_counter() -> FlopCounterMode:
    """A silent FlopCounterMode that also counts the kernels in :data:`EXTRA_FORMULAS`."""
    return FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS)
