"""FLOPs and parameters of DARTS networks, computed analytically for many networks at once.

The figures are those of :class:`narbuild.nasgen.modules.DartsNetwork` on one 3x32x32 input,
in the convention of the real models' ``graphs`` rows (``FlopCounterMode``: 2 FLOPs per
multiply-accumulate of convolutions and matrix products; batch norm, pooling, ReLU and additions
are not counted). Parameters include the batch norms' weight and bias (not their running
statistics) and the classifier's bias. The tests check both against the real module.
"""

from __future__ import annotations

import numpy as np

from narbuild.nasgen.genotype import OPS, STEPS, arrays_to_slots
from narbuild.nasgen.graphs import reduction_cells

STEM_MULTIPLIER = 3
IMAGE_SIZE = 32


def _op_cost(op: str, c: int, size: int, stride2: bool) -> tuple[int, int]:
    """(FLOPs, parameters) of one operation on ``c`` channels with output ``size`` x ``size``."""
    area = size * size
    if op == "skip_connect":
        if not stride2:
            return 0, 0
        half = c // 2
        return 2 * 2 * half * c * area, 2 * half * c + 2 * c
    if op in ("max_pool_3x3", "avg_pool_3x3"):
        return 0, 0
    k = int(op[-1])
    unit_flops, unit_params = 2 * (c * k * k + c * c) * area, c * k * k + c * c + 2 * c
    repeat = 2 if op.startswith("sep_conv") else 1
    return repeat * unit_flops, repeat * unit_params


def _relu_conv_bn(c_in: int, c_out: int, size: int) -> tuple[int, int]:
    return 2 * c_in * c_out * size * size, c_in * c_out + 2 * c_out


def network_costs(normal: np.ndarray, reduce: np.ndarray, depth: int, channels: int = 16,
                  num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(FLOPs, parameters), each (N,) int64, of N networks given as cell arrays (N, 24)."""
    n = len(normal)
    red = reduction_cells(depth)
    slots = {False: arrays_to_slots(normal), True: arrays_to_slots(reduce)}
    c_stem = STEM_MULTIPLIER * channels
    flops = np.full(n, 2 * c_stem * 3 * 9 * IMAGE_SIZE ** 2, dtype=np.int64)
    params = np.full(n, c_stem * 3 * 9 + 2 * c_stem, dtype=np.int64)
    c_pp, c_p, c, size = c_stem, c_stem, channels, IMAGE_SIZE
    for k in range(depth):
        reduction, after_reduction = k in red, k - 1 in red
        c = 2 * c if reduction else c
        out_size = size // 2 if reduction else size
        if after_reduction:
            half = c // 2
            fixed = (2 * 2 * half * c_pp * size * size, 2 * half * c_pp + 2 * c)
        else:
            fixed = _relu_conv_bn(c_pp, c, size)
        f1, p1 = _relu_conv_bn(c_p, c, size)
        flops += fixed[0] + f1
        params += fixed[1] + p1
        table = np.array([[_op_cost(op, c, out_size, s and reduction) for s in (False, True)]
                          for op in OPS], dtype=np.int64)           # (7, 2, 2)
        ops, inputs = slots[reduction]
        stride2 = (inputs < 2).astype(np.int64)
        cost = table[ops.astype(np.int64) - 1, stride2]            # (N, 8, 2)
        flops += cost[..., 0].sum(axis=1)
        params += cost[..., 1].sum(axis=1)
        c_pp, c_p, size = c_p, STEPS * c, out_size
    flops += 2 * c_p * num_classes
    params += c_p * num_classes + num_classes
    return flops, params
