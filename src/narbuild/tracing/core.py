"""Trace one module: a forward pass under the FLOP counter, then the autograd walk."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from narbuild.tracing.flops import flop_counter
from narbuild.tracing.graph import OpGraph, walk_autograd
from narbuild.tracing.inputs import describe


@dataclass
class TraceResult:
    """A traced model: its operator graph and the figures measured on the way."""

    graph: OpGraph
    flops: int
    params: int
    inputs: dict[str, Any]
    outputs: list[list[int]]
    device: str
    dtype: str
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def macs(self) -> int:
        return self.flops // 2


def count_params(model: torch.nn.Module) -> int:
    """Parameters, each shared/tied parameter counted once (works on meta tensors)."""
    return sum(p.numel() for p in model.parameters())  # parameters() yields each once


def output_tensors(obj: Any) -> Iterator[torch.Tensor]:
    """Every tensor in a (nested) model output: tensors, tuples, lists, dicts, ModelOutputs."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict) or hasattr(obj, "to_tuple"):
        for value in (obj.values() if isinstance(obj, dict) else obj.to_tuple()):
            yield from output_tensors(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from output_tensors(value)


def trace_module(model: torch.nn.Module, inputs: tuple | dict) -> TraceResult:
    """Run ``model`` once on ``inputs`` and return its autograd operator graph and figures.

    The model and inputs may live on the meta device (no memory for weights) or the CPU; the
    graph is the same either way because attention runs on PyTorch's math path everywhere.
    ``inputs`` is a tuple of positional arguments or a dict of keyword arguments.
    """
    start = time.perf_counter()
    counter = flop_counter()
    with sdpa_kernel([SDPBackend.MATH]), counter, torch.enable_grad():
        out = model(**inputs) if isinstance(inputs, dict) else model(*inputs)
    tensors = [t for t in output_tensors(out) if t.grad_fn is not None]
    if not tensors:
        raise RuntimeError("no output tensor has a grad_fn (the model's outputs are detached)")
    graph = walk_autograd(tensors)
    first = max(model.parameters(), key=lambda p: p.numel(), default=None)
    return TraceResult(
        graph=graph,
        flops=int(counter.get_total_flops()),
        params=count_params(model),
        inputs=describe(inputs),
        outputs=[list(t.shape) for t in tensors][:16],
        device=str(first.device) if first is not None else "cpu",
        dtype=str(first.dtype).removeprefix("torch.") if first is not None else "float32",
        seconds=time.perf_counter() - start,
    )
