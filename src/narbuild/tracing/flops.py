"""FLOP counting on meta tensors with ``FlopCounterMode``, plus the kernels it misses.

Convention: 2 FLOPs per multiply-accumulate, as FlopCounterMode counts (torchvision's published
"GFLOPS" are MACs: resnet50 4.09 = 8.18e9 / 2). Only matmul, convolution and attention kernels
are counted.
"""

from __future__ import annotations

import functools
from math import prod
from typing import ClassVar

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry, sdpa_flop_count, shape_wrapper

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


def reference_counter() -> FlopCounterMode:
    """PyTorch's own FlopCounterMode with :data:`EXTRA_FORMULAS` (per-module counts; slower)."""
    return FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS)


_SKIP = {torch.ops.prim.device.default}
_COMPOSITE = torch._C.DispatchKey.CompositeImplicitAutograd


@functools.cache
def _decomposes(func: torch._ops.OpOverload) -> bool:
    """Whether ``func.decompose`` has a decomposition to run (FlopCounterMode counts inside
    those); asked once per operator instead of once per call."""
    return func not in _SKIP and (
        _COMPOSITE in func.py_kernels
        or torch._C._dispatch_has_kernel_for_dispatch_key(func.name(), _COMPOSITE))


class FlopCounter(TorchDispatchMode):
    """FlopCounterMode's formulas and dispatch rules, without its per-module bookkeeping.

    FlopCounterMode hooks every module call to attribute FLOPs to modules; tracing only needs
    the total, and dropping the hooks halves the cost of a forward pass on meta tensors. The
    totals are the same (tests compare both on real models).
    """

    registry: ClassVar[dict] = {**flop_registry,
                                **{k: shape_wrapper(v) for k, v in EXTRA_FORMULAS.items()}}

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        packet = func._overloadpacket
        if packet not in self.registry and _decomposes(func):
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        out = func(*args, **kwargs)
        if packet in self.registry:
            self.total += self.registry[packet](*args, **kwargs, out_val=out)
        return out

    def get_total_flops(self) -> int:
        return self.total


def flop_counter() -> FlopCounter:
    """The FLOP counter tracing uses (same totals as :func:`reference_counter`)."""
    return FlopCounter()
