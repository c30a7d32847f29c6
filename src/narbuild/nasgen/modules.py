"""Real PyTorch modules for DARTS-space networks (DARTS's ``model.py`` and ``operations.py``).

The graph views of :mod:`narbuild.nasgen.graphs` describe exactly these modules; tracing one
with :func:`narbuild.tracing.graph.walk_autograd` (then removing ``AccumulateGrad`` and
``TBackward0``) gives the operator-level graph of the ``nas`` table. Differences from DARTS's
``NetworkCIFAR``: no auxiliary head and no drop-path (neither is part of the architecture at
inference), and the forward pass reads no training flag.
"""

from __future__ import annotations

import torch
from torch import nn

from narbuild.nasgen.cost import IMAGE_SIZE, STEM_MULTIPLIER
from narbuild.nasgen.genotype import Cell, Genotype, check_cell
from narbuild.nasgen.graphs import reduction_cells

INPUT_SHAPE = (1, 3, IMAGE_SIZE, IMAGE_SIZE)
"""The example input (CIFAR-sized) that FLOPs and the table's ``inputs`` column refer to."""


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(c_out))


class DilConv(nn.Sequential):
    def __init__(self, c: int, kernel: int, stride: int, padding: int, dilation: int) -> None:
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c, c, kernel, stride, padding, dilation=dilation, groups=c,
                                   bias=False),
                         nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))


class SepConv(nn.Sequential):
    def __init__(self, c: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(DilConv(c, kernel, stride, padding, 1), DilConv(c, kernel, 1, padding, 1))


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset 1x1 stride-2 convolutions, concatenated."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def make_op(op: str, c: int, stride: int) -> nn.Module:
    """One DARTS operation on ``c`` channels."""
    if op == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    if op == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    kernel = int(op[-1])
    if op.startswith("sep_conv"):
        return SepConv(c, kernel, stride, kernel // 2)
    return DilConv(c, kernel, stride, 2 * (kernel // 2), 2)


class DartsCell(nn.Module):
    """A cell: preprocess both inputs, one operation per slot, ADD per node, concatenate."""

    def __init__(self, pairs: Cell, c_prev_prev: int, c_prev: int, c: int, reduction: bool,
                 reduction_prev: bool) -> None:
        super().__init__()
        check_cell(pairs)
        self.preprocess0 = (FactorizedReduce(c_prev_prev, c) if reduction_prev
                            else ReLUConvBN(c_prev_prev, c, 1, 1, 0))
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        self.inputs = [i for _, i in pairs]
        self.ops = nn.ModuleList(make_op(op, c, 2 if reduction and i < 2 else 1)
                                 for op, i in pairs)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for j in range(len(self.ops) // 2):
            a, b = 2 * j, 2 * j + 1
            states.append(self.ops[a](states[self.inputs[a]]) + self.ops[b](states[self.inputs[b]]))
        return torch.cat(states[2:], dim=1)


class DartsNetwork(nn.Module):
    """Stem, ``depth`` cells (reductions at one and two thirds), global pooling, classifier."""

    def __init__(self, genotype: Genotype, depth: int = 8, channels: int = 16,
                 num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        reductions = reduction_cells(depth)
        c_curr = STEM_MULTIPLIER * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for k in range(depth):
            reduction = k in reductions
            c_curr = c_curr * 2 if reduction else c_curr
            pairs = genotype.reduce if reduction else genotype.normal
            self.cells.append(DartsCell(pairs, c_prev_prev, c_prev, c_curr, reduction,
                                        reduction_prev))
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, (len(pairs) // 2) * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        out = self.global_pooling(s1)
        return self.classifier(out.view(out.size(0), -1))
